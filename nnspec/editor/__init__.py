"""Editor support: ``nnspec lsp`` (server.py, which needs pygls) over the torch-free context,
analysis and features modules."""
