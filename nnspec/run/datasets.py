"""Build the dataset a spec names: check its name and arguments, then call its builder.

Each dataset is one module of ``nnspec.catalogue.datasets`` (its arguments, docs and builder);
this is the runner's one way in, with located errors for an unknown name or a bad argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from nnspec.catalogue.datasets import Context, dataset_entries, datasets
from nnspec.errors import Problem, SpecError
from nnspec.run.instantiate import entry
from nnspec.run.table import Source

__all__ = ["Context", "build_source"]


def _args_schema(name: str) -> dict[str, Any]:
    params = dataset_entries()[name].params.values()
    return {"type": "object", "additionalProperties": False,
            "properties": {p.name: dict(p.schema) for p in params},
            "required": [p.name for p in params if p.required]}


def build_source(name: str, args: Mapping[str, Any], ctx: Context) -> Source:
    """Check the name and arguments (located errors), then build the dataset."""
    entry("dataset", name, ctx.location, ctx.path)
    if ctx.root is not None and "root" in dataset_entries()[name].params:
        args = {"root": ctx.root, **args}  # data.root stands in for a root left out
    validator = jsonschema.Draft202012Validator(_args_schema(name))
    errors = sorted(validator.iter_errors(dict(args)), key=lambda e: list(e.absolute_path))
    if errors:
        raise SpecError([Problem(ctx.location, (*ctx.path, name, *e.absolute_path), e.message)
                         for e in errors])
    return datasets()[name].build(args, ctx)
