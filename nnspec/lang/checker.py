"""The check pass: ``Document`` -> ``Spec``.

Validates the whole document against the JSON Schema (for structure and the training sections),
parses the model and blocks into typed syntax, and the training sections into strict pydantic
models.  Every problem is collected with its location, so the user sees all of them at once.
Model-section errors come from the model parser and the resolve pass, which know more than the
schema can say (did-you-mean over the spec's own blocks, for instance).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from functools import cache
from typing import Any

from nnspec import catalogue
from nnspec.errors import (
    Collector,
    Location,
    Problem,
    SpecError,
    SpecPath,
    did_you_mean,
    format_path,
)
from nnspec.lang import schema
from nnspec.lang.loader import Document
from nnspec.lang.model_ast import ModelParser
from nnspec.lang.spec import EXPR_PATTERN, Spec, TensorInput

TOP_KEYS = ("nnspec", "name", "description", "input", "vars", "blocks", "model", "data", "init",
            "weights", "freeze", "loss", "optimizer", "scheduler", "train", "log")
MODEL_PATHS = schema.MODEL_SECTIONS


@cache
def _document_validator() -> Any:
    return schema.strict_validator_class()(schema.load_checker_schema())


def check(doc: Document) -> Spec:
    """The typed spec, or a SpecError listing every problem in the document."""
    spec, problems = check_partial(doc)
    if problems or spec is None:
        raise SpecError(problems)
    return spec


def check_partial(doc: Document) -> tuple[Spec | None, list[Problem]]:
    """The spec with whatever sections are valid, and the problems found.

    Lets ``validate`` go on to check the model even when, say, the optimizer is misspelt, so
    the user sees every error at once.
    """
    try:
        return _check(doc), []
    except SpecError as exc:
        return getattr(exc, "partial", None), exc.problems


def _check(doc: Document) -> Spec:
    errors = Collector()
    data = doc.data
    if not isinstance(data, dict):
        errors.add(doc.locate(()), (), "a spec is a mapping with at least 'nnspec' and 'model'",
                   "start the file with 'nnspec: 1'")
        errors.raise_if_any()
    _schema_problems(doc, errors)
    version = data.get("nnspec")
    parser = ModelParser(doc.locate, errors, version if isinstance(version, int) else 1)
    parser.input_names(data.get("input"))
    model = parser.model(data["model"], ("model",)) if "model" in data else None
    blocks = parser.blocks(data.get("blocks"), ("blocks",)) if isinstance(
        data.get("blocks"), dict) else {}
    training = _training(doc, errors)
    warnings = tuple(errors.warnings)
    if not errors.problems:
        return _spec(doc, model, blocks, training, warnings)
    partial = None
    model_ok = not any(p.path[:1] in (("model",), ("blocks",), ("input",), ("vars",), ())
                       for p in errors.problems)
    if model_ok and model is not None:  # with the sound training sections, for preflight
        sound = {k: v for k, v in training.items()
                 if not any(p.path[:1] == (k,) for p in errors.problems)}
        # the header keys the schema refused take their defaults: the model is checked on
        refused = {p.path[0] for p in errors.problems if p.path}
        partial = _spec(doc, model, blocks, sound, warnings, refused)
    error = SpecError([*errors.problems, *warnings])
    error.partial = partial  # type: ignore[attr-defined]
    raise error


def _spec(doc: Document, model: Any, blocks: dict[str, Any], training: dict[str, Any],
          warnings: tuple[Any, ...] = (), refused: Collection[Any] = ()) -> Spec:
    data = {k: v for k, v in doc.data.items() if k not in refused}
    return Spec(
        version=data.get("nnspec", 1), name=data.get("name") or _default_name(doc.file),
        description=data.get("description", ""), inputs=_inputs(data.get("input")),
        vars=data.get("vars") or {}, blocks=blocks, model=model, file=doc.file,
        var_locations={k: doc.locate(("vars", k)) for k in data.get("vars") or {}},
        source_text=doc.text, document=doc, warnings=warnings, **training,
    )


def sha256(spec: Spec) -> str:
    return hashlib.sha256(spec.source_text.encode()).hexdigest()


def _default_name(file: str) -> str:
    stem = file.rsplit("/", 1)[-1].split(".")[0]
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in stem).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else "model"


def _schema_problems(doc: Document, errors: Collector) -> None:
    for key in doc.data:
        if key not in TOP_KEYS:
            errors.add(doc.locate((key,), key=True), (key,), f"unknown section '{key}'",
                       did_you_mean(key, TOP_KEYS) or f"sections: {', '.join(TOP_KEYS)}")
    for key in ("nnspec", "model"):
        if key not in doc.data:
            errors.add(doc.locate(()), (), f"missing required section '{key}'",
                       "a spec needs 'nnspec: 1' and a 'model'")
    # model and blocks are judged by the parser and resolve, which say more than the schema
    # can; leaving them out also keeps a big model from costing a schema walk per layer
    rest = {k: v for k, v in doc.data.items() if k not in MODEL_PATHS}
    for error in _document_validator().iter_errors(rest):
        path = tuple(error.absolute_path)
        if not path:
            continue  # top-level keys: reported above
        _add_schema_error(doc, errors, error)


def _add_schema_error(doc: Document, errors: Collector, error: Any) -> None:
    if error.validator == "anyOf" and error.context:
        aimed = _aimed_branch(error)
        for inner in aimed:
            _add_schema_error(doc, errors, inner)
        if aimed:
            return
    path, message, hint, at_key = schema.explain(error)
    named = _named_kind(path[:-1] if at_key else path)
    if named and (at_key or error.validator == "enum"):
        kind, names = named
        message = f"unknown {kind} '{path[-1] if at_key else error.instance}'"
        hint = did_you_mean(str(path[-1] if at_key else error.instance), names) or (
            "one of: " + ", ".join(names[:15]) + (", ..." if len(names) > 15 else ""))
    errors.add(doc.locate(path, key=at_key), path, message, hint)


_NAMED_KINDS = {"dataset": "dataset", "loss": "loss", "optimizer": "optimizer",
                "scheduler": "scheduler", "fn": "init function", "transforms": "transform",
                "target_transforms": "target transform"}


def _named_kind(path: SpecPath) -> tuple[str, list[str]] | None:
    """For the path of a named thing (``loss``, ``data.transforms[2]``): its kind and names."""
    words = [p for p in path if isinstance(p, str)]
    if not words or words[-1] not in _NAMED_KINDS or (words[-1] == "fn") != (words[0] == "init"):
        return None
    if isinstance(path[-1], str) and words[-1] in ("transforms", "target_transforms"):
        return None  # the list itself, not one transform
    kind = _NAMED_KINDS[words[-1]]
    if kind == "dataset":
        from nnspec.catalogue.datasets import dataset_entries

        return kind, sorted(dataset_entries())
    section = {"init function": "init", "target transform": "transform"}.get(kind, kind)
    return kind, sorted(catalogue.section(section))


def _aimed_branch(error: Any) -> list[Any]:
    """The errors of the one anyOf branch the user was aiming at, if exactly one fits.

    A branch fits when the value has the right kind for it: ``-1.5`` aims at ``number > 0``,
    not at ``null``; ``'Adma'`` at the list of names, not at ``{Name: args}``.  Reporting inside
    that branch says what is really wrong ("expected a number > 0") instead of listing types.
    """
    branches: dict[Any, list[Any]] = {}
    for e in error.context:
        branches.setdefault(e.relative_schema_path[0], []).append(e)
    fitting = [errs for errs in branches.values()
               if not any(_wrong_kind(e, error.absolute_path) for e in errs)]
    if len(fitting) > 1 and isinstance(error.instance, dict):
        fitting = _aimed_mapping(error, fitting)
    return fitting[0] if len(fitting) == 1 else []


def _aimed_mapping(error: Any, fitting: list[list[Any]]) -> list[list[Any]]:
    """Of several mapping branches ({shape, dtype} or input names, say): the one that names
    most of the value's keys, else the ones not missing a required key."""
    keys = set(error.instance)
    named = [len(keys & set(_branch_schema(error, errs).get("properties", {})))
             for errs in fitting]
    if max(named) > 0 and named.count(max(named)) == 1:
        return [fitting[named.index(max(named))]]
    complete = [errs for errs in fitting if not any(
        e.validator == "required" and e.absolute_path == error.absolute_path for e in errs)]
    return complete or fitting


def _branch_schema(error: Any, errs: list[Any]) -> dict[str, Any]:
    branch = error.schema[error.validator][errs[0].relative_schema_path[0]]
    return branch if isinstance(branch, dict) else {}


def _wrong_kind(e: Any, at: Any) -> bool:
    if e.absolute_path != at:
        return False
    if e.validator == "type":
        return True
    if e.validator == "pattern":
        return bool(e.schema.get("pattern") == EXPR_PATTERN)  # not meant as a $variable
    if e.validator in ("const", "enum"):
        allowed = [e.schema["const"]] if e.validator == "const" else e.schema["enum"]
        return not any(type(v) is type(e.instance) for v in allowed)
    return False


def _inputs(raw: Any) -> dict[str, TensorInput]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        return {"input": TensorInput(shape=raw)}
    if isinstance(raw, dict) and "shape" in raw:
        return {"input": TensorInput(**raw)}
    return {name: TensorInput(shape=v) if isinstance(v, list) else TensorInput(**v)
            for name, v in raw.items()}


# -- training sections ---------------------------------------------------------------------

def _named(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": value, "args": {}}
    name = next(iter(value))
    return {"name": name, "args": value[name] or {}}


def _named_beside(*keys: str) -> Callable[[Any], dict[str, Any]]:
    """``Name`` or ``{Name: {args}}``, with ``keys`` written beside the name (a loss's
    ``inputs``, an optimizer's ``groups``, a scheduler's ``interval``)."""

    def convert(raw: Any) -> dict[str, Any]:
        if isinstance(raw, str):
            return {"name": raw, "args": {}}
        beside = {k: raw[k] for k in keys if k in raw}
        return {**_named({k: v for k, v in raw.items() if k not in beside}), **beside}

    return convert


def _training(doc: Document, errors: Collector) -> dict[str, Any]:
    """Parse data, init, loss, optimizer, scheduler, train, log into pydantic models."""
    from pydantic import ValidationError

    from nnspec.lang import spec as S

    data, out = doc.data, {}
    builders: dict[str, tuple[Any, Any]] = {
        "data": (S.Data, _data_input), "loss": (S.Loss, _named_beside("inputs")),
        "optimizer": (S.Optimizer, _named_beside("groups")),
        "scheduler": (S.Scheduler, _named_beside("interval", "warmup_steps")),
        "weights": (S.Weights, _weights_input),
        "train": (S.Train, dict), "log": (S.Log, dict),
    }
    refused = {p.path[0] for p in errors.problems if p.path}
    for key, (model, convert) in builders.items():
        if key not in data or data[key] is None or key in refused:
            continue  # absent, or of a shape the schema refused: not converted, not typed
        try:
            value = convert(data[key])
            value = _with_location(value, doc, (key,))
            out[key] = model.model_validate(value, strict=True)
        except ValidationError as exc:
            _pydantic_problems(doc, errors, (key,), exc)
        except StopIteration:  # {inputs: [...]} with no loss beside it, say
            errors.add(doc.locate((key,)), (key,), f"no {key} named here",
                       f"write {key}: NAME or {key}: {{NAME: {{args}}}}")
    if isinstance(data.get("init"), list):
        out["init"] = _init_rules(doc, errors, data["init"])
    if "loss" in out and out["loss"].name in catalogue.section("loss"):
        from nnspec.lang.loss_inputs import input_problems

        loss = out["loss"]
        for path, message, hint in input_problems(loss.name, loss.inputs):
            errors.add(doc.locate(("loss", *path)), ("loss", *path), message, hint)
    if isinstance(data.get("freeze"), list):
        out["freeze"] = _selections(doc, errors, ("freeze",), data["freeze"], S.FreezeRule)
    if isinstance(data.get("optimizer"), dict) and set(data["optimizer"]) == {"groups"}:
        errors.add(doc.locate(("optimizer",)), ("optimizer",), "groups need an optimizer "
                   "beside them", "optimizer: {AdamW: {lr: 0.001}, groups: [...]}")
    if "optimizer" in out:
        for path, message, hint in S.optimizer_problems(out["optimizer"]):
            errors.add(doc.locate(("optimizer", *path)), ("optimizer", *path), message, hint)
        _group_problems(doc, errors, out["optimizer"])
    if "scheduler" in out:
        for path, message, hint in S.scheduler_problems(out["scheduler"]):
            where = ("scheduler", *path)
            errors.add(doc.locate(where, key=path == (out["scheduler"].name,)), where, message,
                       hint)
    if "train" in out and "loss" in out:
        for spot, said, fix in S.metric_problems(out["train"], out["loss"].name):
            errors.add(doc.locate(spot), spot, said, fix)
    for at, text, advice in [*(S.train_problems(out["train"]) if "train" in out else []),
                             *(S.data_problems(out["data"]) if "data" in out else [])]:
        errors.add(doc.locate(at), at, text, advice)
    return out


def _with_location(value: Any, doc: Document, path: SpecPath) -> Any:
    if path == ("weights",) and isinstance(value, dict):
        return {**value, "location": doc.locate(path), "locations": _places(doc, path, value)}
    if path == ("optimizer",) and isinstance(value, dict) and "groups" in value:
        groups = value["groups"]
        value = {k: v for k, v in value.items() if k != "groups"}
        located = _with_location(value, doc, path)
        return {**located, "groups": _selection_inputs(doc, (*path, "groups"), groups)}
    return _located_named(value, doc, path)


def _located_named(value: Any, doc: Document, path: SpecPath) -> Any:
    """Give every named thing (dataset, transform, optimizer, ...) its place in the file, and
    the places of its arguments and of the keys beside its name (``loss.inputs``), so that a
    run-time error about one points at it (or at the override that set it)."""
    if isinstance(value, dict) and "name" in value and "args" in value:
        at = (*path, value["name"])
        places = {format_path((k,)): doc.locate((*at, k)) for k in value["args"] or {}}
        for key in value.keys() - {"name", "args"}:
            places[key] = doc.locate((*path, key))
            if isinstance(value[key], list):  # loss.inputs: each entry's own place
                places.update({format_path((key, i)): doc.locate((*path, key, i))
                               for i in range(len(value[key]))})
        return {**value, "location": doc.locate(at, key=True), "locations": places}
    if isinstance(value, dict) and path[:1] == ("data",) and path[-1:] in (
            ("train",), ("val",), ("test",)) and path[1:-1] in ((), ("fallback",)):
        # a split (of the data section or its fallback): its range's place, for the run
        split = {k: _with_location(v, doc, (*path, k)) for k, v in value.items()}
        return {**split, "location": doc.locate(path),
                "locations": {k: doc.locate((*path, k)) for k in value}}
    if isinstance(value, dict):
        return {k: _with_location(v, doc, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_location(v, doc, (*path, i)) for i, v in enumerate(value)]
    return value


def _data_input(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    out["dataset"] = _named(raw["dataset"]) if "dataset" in raw else None
    if out["dataset"] is None:
        del out["dataset"]
    for key in ("transforms", "target_transforms"):
        if key in raw:
            out[key] = [_named(t) for t in raw[key]]
    for split in ("train", "val", "test"):
        if isinstance(raw.get(split), dict):
            s = dict(raw[split])
            if "dataset" in s:
                s["dataset"] = _named(s["dataset"])
            if "transforms" in s:
                s["transforms"] = [_named(t) for t in s["transforms"]]
            out[split] = s
    if isinstance(raw.get("fallback"), dict):  # a stand-in: named things like the section's
        out["fallback"] = _data_input(raw["fallback"])
    return out


def _weights_input(raw: Any) -> dict[str, Any]:
    """``weights: FILE`` is short for ``weights: {from: FILE}``."""
    return {"from": raw} if isinstance(raw, str) else dict(raw)


def _group_problems(doc: Document, errors: Collector, optimizer: Any) -> None:
    """Group settings the optimizer does not take, or values it cannot take."""
    from nnspec.lang.exprs import is_expr
    from nnspec.lang.spec import OPTIMIZER_NONNEGATIVE_ARGS

    entry = catalogue.section("optimizer").get(optimizer.name)
    for i, rule in enumerate(optimizer.groups):
        for name, value in rule.args.items():
            at = ("optimizer", "groups", i, name)
            if entry is not None and name not in entry.params:
                errors.add(doc.locate(at, key=True), at,
                           f"unknown setting '{name}' of {optimizer.name}",
                           did_you_mean(name, entry.params) or
                           f"settings: {', '.join(entry.params)}")
            elif isinstance(value, str) and not is_expr(value):
                errors.add(doc.locate(at), at, f"expected a number or an expression, found "
                           f"{value!r}", "an expression of depth: ${0.001 * 0.8 ** depth}")
            elif name in OPTIMIZER_NONNEGATIVE_ARGS and isinstance(value, int | float) and \
                    not isinstance(value, bool) and value < 0:
                errors.add(doc.locate(at), at, f"{name} must not be negative, found {value}",
                           f"torch.optim refuses a negative {OPTIMIZER_NONNEGATIVE_ARGS[name]}")


def _places(doc: Document, path: SpecPath, value: Any) -> dict[str, Location]:
    """Where each value inside ``value`` (at ``path``) was written, keyed by its relative path
    (``match.name``, ``skip[1]``), so a run-time error points at the very value."""
    out: dict[str, Location] = {}

    def walk(node: Any, rel: SpecPath) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for k, v in items:
            out[format_path((*rel, k))] = doc.locate((*path, *rel, k))
            walk(v, (*rel, k))

    walk(value, ())
    return out


_SELECTION_KEYS = {"freeze": ("match", "unless", "stats", "epochs"),
                   "groups": ("match", "unless")}


def _selection_inputs(doc: Document, path: SpecPath, rules: Any) -> Any:
    """Freeze and group rules with their places; a group rule's other keys are its settings."""
    if not isinstance(rules, list):
        return rules
    out: list[Any] = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            out.append(rule)
            continue
        at = (*path, i)
        keys = _SELECTION_KEYS[str(path[-1])]
        entry = {k: v for k, v in rule.items() if k in keys}
        if path[-1] == "groups":
            entry["args"] = {k: v for k, v in rule.items() if k not in keys}
        out.append({**entry, "location": doc.locate(at), "locations": _places(doc, at, rule)})
    return out


def _selections(doc: Document, errors: Collector, path: SpecPath, rules: list[Any],
                model: Any) -> list[Any]:
    from pydantic import ValidationError

    out = []
    for i, rule in enumerate(_selection_inputs(doc, path, rules)):
        try:
            out.append(model.model_validate(rule, strict=True))
        except ValidationError as exc:
            _pydantic_problems(doc, errors, (*path, i), exc)
    return out


def _init_rules(doc: Document, errors: Collector, rules: list[Any]) -> list[Any]:
    from pydantic import ValidationError

    from nnspec.lang.spec import InitRule

    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("fn"), str):
            continue  # reported by the schema
        args = {k: v for k, v in rule.items() if k not in ("match", "fn")}
        entry = catalogue.section("init").get(rule["fn"])
        if entry is not None:
            for name in args:
                if name not in entry.params:
                    errors.add(doc.locate(("init", i, name), key=True), ("init", i, name),
                               f"unknown argument '{name}' of {rule['fn']}",
                               did_you_mean(name, entry.params) or
                               f"arguments: {', '.join(entry.params) or 'none'}")
        try:
            out.append(InitRule.model_validate(
                {"match": rule.get("match") or {}, "fn": rule["fn"], "args": args,
                 "location": doc.locate(("init", i))}, strict=True))
        except ValidationError as exc:
            _pydantic_problems(doc, errors, ("init", i), exc)
    return out


def _pydantic_problems(doc: Document, errors: Collector, base: SpecPath, exc: Any) -> None:
    """Pydantic errors that the schema did not already report (they agree on most)."""
    reported = {p.path for p in errors.problems}
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if x not in ("name", "args", "location"))
        path = (*base, *loc)
        if any(path[: len(r)] == r or r[: len(path)] == path for r in reported):
            continue
        errors.add(doc.locate(path), path, err["msg"].lower())
