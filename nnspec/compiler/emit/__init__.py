"""The emit pass: a shape-annotated ``Graph`` -> standalone Python that imports only torch.

``plan`` decides which classes to write, ``names`` makes safe identifiers, ``format`` lays out
calls as ruff would, ``safety`` parses the result back and checks it, ``emitter`` ties them.
"""
