"""The spec language: load text safely, apply overrides, check it into typed ``Spec`` objects.

``loader`` (text -> ``Document``), ``overrides`` (``KEY=VALUE``), ``checker`` (``Document`` ->
``Spec``), ``spec`` (the pydantic models), ``model_ast`` (the model section's forms),
``exprs`` (``vars`` and ``${...}``) and ``schema`` (the JSON Schema).  Nothing here imports torch.
"""
