"""The compiler: ``Spec`` -> ``Graph`` (resolve) -> shapes (infer) -> ``nn.Module`` or Python.

``ir`` (the typed graph the passes share), ``resolve``, ``shapes``, ``build``, ``modules`` (the
few nn.Modules nnspec adds) and ``emit/`` (standalone Python source).
"""
