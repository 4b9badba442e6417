"""The JSON Schema of the spec language, derived from the pydantic models and the catalogue.

``build_schema()`` is what ``nnspec schema`` prints and what schema/nnspec.schema.json holds;
``args_validator(entry)`` is the per-layer part the resolve pass checks evaluated arguments
with, so the editor and the checker judge a layer's arguments by the very same schema.
``explain(error)`` turns a jsonschema error into nnspec's message and hint.

The checker validates with ``checker_schema()``, the same schema less what only an editor
needs: the model's and blocks' forms (every layer's arguments and snippets, the name patterns;
the parser and resolve judge those) and the annotations (descriptions, snippets).  Building it
costs more than the rest of ``validate --no-shapes``, so it ships prebuilt as
``checker_schema.json`` beside this module, written by ``python -m nnspec.lang.schema``; a test
fails when the file is stale.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, get_args

from nnspec import catalogue
from nnspec.catalogue import AUTO, Entry
from nnspec.catalogue.names import near_miss_pattern
from nnspec.catalogue.text import entry_line, param_line
from nnspec.errors import did_you_mean
from nnspec.lang.spec import EXPR_PATTERN, Dtype

DRAFT = "http://json-schema.org/draft-07/schema#"
EXPR = {"type": "string", "pattern": EXPR_PATTERN,
        "description": "A variable ($width) or an expression (${width * 2})."}
NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
# a module name as torch takes it (format 2: block1-0), as nnspec.lang.model_ast.MODULE_NAME
MODULE_NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_-]*$"
MODEL_SECTIONS = ("model", "blocks")  # judged by the parser and resolve, not by this schema


def _with_expr(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or an expression in its place or in place of any item of a list."""
    options = schema.get("anyOf", [schema]) if set(schema) == {"anyOf"} else [schema]
    found = {"anyOf": [*map(_items_with_expr, options), {"$ref": "#/definitions/expr"}]}
    return {**found, "description": schema["description"]} if "description" in schema else found


def _items_with_expr(schema: dict[str, Any]) -> dict[str, Any]:
    """A list schema whose items may also be expressions (``[${input.shape[0]}, 3, $heads]``);
    an object's values and the options of a choice likewise, at any depth (a buffer's
    ``init: {relative_position_index: {window: [$window, $window]}}``)."""
    if "anyOf" in schema and "type" not in schema:
        return {**schema, "anyOf": [_items_with_expr(option) for option in schema["anyOf"]]}
    if schema.get("type") == "object":
        found = dict(schema)
        if isinstance(schema.get("properties"), dict):
            found["properties"] = {k: _with_expr(v) for k, v in schema["properties"].items()}
        if isinstance(schema.get("additionalProperties"), dict):
            found["additionalProperties"] = _with_expr(schema["additionalProperties"])
        return found
    items = schema.get("items")
    if schema.get("type") != "array" or not isinstance(items, dict):
        return schema
    return {**schema, "items": {"anyOf": [items, {"$ref": "#/definitions/expr"}]}}


def args_schema(entry: Entry, *, written: bool, expressions: bool | None = None) -> dict[str, Any]:
    """The arguments object of a layer/op: ``written`` as in a spec (no required arguments),
    with $expr values unless ``expressions`` is False (the training sections, where nothing
    evaluates them)."""
    props: dict[str, Any] = {}
    for p in entry.params.values():
        schema = dict(p.schema)
        if p.inferred:
            schema = {"anyOf": [*schema.get("anyOf", [schema]), {"const": AUTO}]}
        if written and expressions is not False:
            schema = _with_expr(schema)
        schema["description"] = param_line(entry, p)
        if not p.required and not p.inferred:
            schema["default"] = p.default
        props[p.name] = schema
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False,
                           "description": entry_line(entry)}
    if entry.required and not written:
        out["required"] = entry.required
    return out


@cache
def args_validator(name: str) -> Any:
    entry = catalogue.callables()[name]
    return strict_validator_class()(args_schema(entry, written=False), format_checker=None)


@cache
def strict_validator_class() -> Any:
    """Draft 7, except that 1.0 is not an integer (JSON Schema says it is; pydantic strict not)."""
    from jsonschema import Draft7Validator, validators

    def is_integer(checker: Any, instance: Any) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = Draft7Validator.TYPE_CHECKER.redefine("integer", is_integer)
    return validators.extend(Draft7Validator, type_checker=checker)


# -- the whole document --------------------------------------------------------------------

def _named_schema(kind: str, entries: dict[str, Entry], extra: dict[str, Any] | None = None,
                  description: str = "") -> dict[str, Any]:
    """``Name`` or ``{Name: {args}}`` for one catalogue section."""
    names = sorted(entries)
    props: dict[str, Any] = {
        n: {"anyOf": [{"type": "null"}, args_schema(entries[n], written=True, expressions=False)],
            "description": entry_line(entries[n])}
        for n in names
    }
    props.update(extra or {})
    return {
        "description": description or f"A {kind}, by name, optionally with arguments.",
        "anyOf": [
            {"type": "string", "enum": names, "description": f"A {kind} by name, with default "
             "arguments.", "enumDescriptions": [entry_line(entries[n]) for n in names]},
            {"type": "object", "properties": props, "additionalProperties": False,
             "minProperties": 1},
        ],
    }


def _loose_args(entry: Entry) -> dict[str, Any]:
    schema = args_schema(entry, written=True)
    return schema


def _layer_value(entry: Entry) -> dict[str, Any]:
    """What may follow ``Name:`` at a layer position: the arguments (required ones required),
    nothing when none is required, or the one required argument's value alone (``Linear: 10``).
    ``defaultSnippets`` make an editor insert ``Conv2d: {out_channels: $1, kernel_size: $2}``."""
    args = args_schema(entry, written=True)
    # propertyNames, not additionalProperties: yaml-language-server skips keys without a value
    # ({kernel_size: 2, ReLU}) in additionalProperties, but checks every key's name
    del args["additionalProperties"]
    args["propertyNames"] = {"enum": list(entry.params), "errorMessage": (
        f"Not an argument of {entry.name}; it takes {', '.join(entry.params)}.")} \
        if entry.params else {"pattern": "^(?!)", "patternErrorMessage":
                              f"{entry.name} takes no arguments."}
    required = entry.required
    if required:
        args["required"] = required
    options: list[dict[str, Any]] = [args] if required else [{"type": "null"}, args]
    if len(required) == 1:
        options.append(_with_expr(dict(entry.params[required[0]].schema)))
    if entry.kind == "op" and entry.max_inputs > 1:  # {add: [bn2, input]}: the inputs by name
        name = {"type": "string"}  # and a constant among them where the op takes one
        item = {"anyOf": [name, {"type": "number"}]} if "scalar" in entry.params else name
        options.append({"type": "array", "items": item, "minItems": 2})
    body = ", ".join(f"{name}: ${i}" for i, name in enumerate(required, 1))
    return {"anyOf": options, "description": entry_line(entry),
            "defaultSnippets": [{"label": entry.name, "body": f"{{{body}}}" if body else None}]}


NAME_HINT = ("Too like a catalogue name (another case, or one letter off): a misspelt layer? "
             "`nnspec layers` lists them; a block needs another name.")


def layer_name_pattern() -> str:
    """A free name at a layer position: a catalogue name exactly, or nothing too like one."""
    exact = "|".join(sorted(catalogue.callables()))
    return f"^(?=(?:{exact})$|(?!{near_miss_pattern()[1:-1]}$))[A-Za-z_][A-Za-z0-9_]*$"


def block_name_pattern() -> str:
    """A block's name: a name, and nothing too like a catalogue name (nnspec.catalogue.names)."""
    return f"^(?!{near_miss_pattern()[1:-1]}$)[A-Za-z_][A-Za-z0-9_]*$"


# a name pattern: module-name characters, ${expr} and $name parts (nnspec.lang.exprs)
NAME_TEMPLATE_PATTERN = r"^(?:[A-Za-z0-9_-]|\$\{[^{}]+\}|\$[A-Za-z_][A-Za-z0-9_]*)+$"


def _repeat_schema() -> dict[str, Any]:
    times = {"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/definitions/expr"}]}
    named = {"type": "object", "required": ["times"], "additionalProperties": False,
             "description": "Format 2: N copies named from a pattern.",
             "properties": {"times": {**times, "description": "The number of copies."},
                            "name": {"type": "string", "pattern": NAME_TEMPLATE_PATTERN,
                                     "description": "Each copy's name, with ${index} (its "
                                     "number, from 0): denselayer${index + 1}, block1-${index}."}}}
    return {"anyOf": [*times["anyOf"], named],
            "description": "Repeat this item N times (an nn.Sequential, children 0..N-1), or "
                           "{times: N, name: PATTERN} to name the copies."}


def _layer_item() -> dict[str, Any]:
    layer_props = {n: _layer_value(e) for n, e in sorted(catalogue.callables().items())}
    container = {k: {"description": f"A nested {k}."} for k in ("sequential", "module_list",
                                                                 "module_dict", "graph")}
    name = {"$ref": "#/definitions/layer_name"}
    return {
        "description": "A layer, op or block: ReLU, {Conv2d: {out_channels: 6, kernel_size: 5}}, "
                       "a list (a nested nn.Sequential) or a nested container.",
        "anyOf": [
            name,
            {"$ref": "#/definitions/expr", "description": "Format 2: the layer a block "
             "parameter holds ($act)."},
            {"type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 1},
            {"type": "object", "minProperties": 1, "propertyNames": name, "properties": {
                **layer_props, **container,
                "repeat": _repeat_schema(),
                "if": {"anyOf": [{"type": "boolean"}, {"$ref": "#/definitions/expr"}],
                       "description": "Format 2: keep this item only where the expression is "
                       "true (${stride != 1}); a graph node left out stands for its input."},
                "in": {"description": "Inside a graph: the node(s) this one takes as input.",
                       "anyOf": [{"type": "string"}, {"type": "array",
                                                      "items": {"type": "string"}}]},
                "reuse": {"type": "string", "description": "Format 2, in a graph: call the "
                          "module of the node named here again, on this node's `in` (shared "
                          "weights: one module, one set of state_dict keys)."},
                "forward": {"type": "array", "description": "Order of the forward pass: "
                            "members, or (format 2) steps that combine them, {add: [0, 1]}."},
                "inputs": {"description": "Names of a graph's inputs."},
                "outputs": {"description": "Names of a graph's outputs."},
            }, "additionalProperties": {
                "description": "A block defined in this spec, with its parameters.",
                "type": ["object", "null"]}},
        ],
    }


def _model_schema() -> dict[str, Any]:
    """A list, a container ({graph: ...}), or a mapping of child name -> layer (OrderedDict)."""
    containers = [{"required": [k]} for k in ("sequential", "module_list", "module_dict", "graph")]
    return {
        "description": "The network: a list (nn.Sequential), a mapping of named layers "
                       "(nn.Sequential(OrderedDict)), or a module_list, module_dict or graph.",
        "anyOf": [
            {"type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 1},
            {"$ref": "#/definitions/layer_name"},
            {"allOf": [{"$ref": "#/definitions/item"}, {"type": "object", "anyOf": containers}]},
            {"type": "object", "not": {"anyOf": containers}, "minProperties": 1,
             "propertyNames": {"pattern": MODULE_NAME_PATTERN},
             "additionalProperties": {"$ref": "#/definitions/item"}},
        ],
    }


def _input_schema() -> dict[str, Any]:
    shape = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 0,
             "description": "The shape of one sample, without the batch dimension."}
    tensor = {"type": "object", "required": ["shape"], "additionalProperties": False,
              "properties": {"shape": shape, "dtype": {
                  "enum": list(get_args(Dtype)), "description": "Element type."}}}
    one = {"anyOf": [shape, tensor]}
    return {"description": "The input: one sample's shape ([1, 28, 28]), {shape, dtype}, or a "
                           "mapping of input name to either, for several inputs.",
            "anyOf": [shape, tensor, {"type": "object", "additionalProperties": one,
                                      "propertyNames": {"pattern": NAME_PATTERN}}]}


def _block_schema() -> dict[str, Any]:
    item = {"$ref": "#/definitions/item"}
    return {
        "type": "object", "additionalProperties": False,
        "description": "A sub-network with parameters, used by name like a layer.",
        "properties": {
            "description": {"type": "string", "description": "What the block is."},
            "params": {"type": "object", "description": "Parameter: type (int, float, bool, "
                       "str, list, layer, any) or {type, default}; a default may use the "
                       "parameters before it.", "additionalProperties": {}},
            "sequential": {"description": "The body: a list or mapping of layers.",
                           "anyOf": [{"type": "array", "items": item},
                                     {"type": "object", "additionalProperties": item}]},
            "graph": {"type": "object", "additionalProperties": item,
                      "description": "The body: named nodes that name their inputs."},
            "module_list": {"anyOf": [{"type": "array", "items": item}, item],
                            "description": "The body: a list of members, or (format 2) one "
                            "item with repeat: N, whose copies are the members."},
            "module_dict": {"type": "object", "additionalProperties": item,
                            "description": "The body."},
            "forward": {"type": "array", "description": "module_list and module_dict bodies: "
                        "the order of the forward pass."},
            "inputs": {"description": "Names of the block's inputs (default: input)."},
            "outputs": {"description": "Names of the block's outputs (default: last node)."},
        },
    }


def _training_sections() -> tuple[dict[str, Any], dict[str, Any]]:
    """Schemas of data, init, loss, optimizer, scheduler, train, log from the pydantic models."""
    from nnspec.catalogue.datasets import dataset_entries
    from nnspec.lang import spec

    defs: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, model in (("train", spec.Train), ("log", spec.Log)):
        schema = model.model_json_schema(ref_template="#/definitions/{model}")
        defs.update(schema.pop("$defs", {}))
        schema["description"] = (model.__doc__ or key).strip().split("\n")[0]
        props[key] = schema
    data = spec.Data.model_json_schema(ref_template="#/definitions/{model}")
    defs.update(data.pop("$defs", {}))
    dataset = _named_schema("dataset", dataset_entries())
    transform = _named_schema("transform", catalogue.section("transform"))
    data["properties"]["dataset"] = dataset
    for key in ("transforms", "target_transforms"):
        data["properties"][key] = {"type": "array", "items": transform,
                                   "description": data["properties"][key].get("description")}
    split = defs["DataSplit"]
    split["properties"]["dataset"] = dataset
    split["properties"]["transforms"] = {"type": "array", "items": transform,
                                         "description": "Transforms of this split."}
    fallback = defs["DataFallback"]
    fallback["properties"]["dataset"] = dataset
    fallback["properties"]["transforms"] = {"type": "array", "items": transform,
                                            "description": "Transforms of the stand-in."}
    data["description"] = "The dataset, its transforms, splits and loader settings."
    props["data"] = data
    defs.pop("Named", None)
    defs.pop("Location", None)  # a field excluded from specs (where a named thing was written)
    props["loss"] = _named_schema("loss", catalogue.section("loss"), {
        "inputs": {"type": "array", "items": {"type": "string"},
                   "description": "Where each argument of the loss comes from."}},
        "The loss: a torch.nn loss by name, with arguments.")
    props["optimizer"] = _named_schema("optimizer", catalogue.section("optimizer"), {
        "groups": {"type": "array", "items": _group_rule_schema(),
                   "description": spec.Optimizer.model_fields["groups"].description}},
        "A torch.optim optimizer, and settings per group of parameters.")
    props["scheduler"] = _named_schema("scheduler", catalogue.section("scheduler"), {
        "interval": {"enum": ["epoch", "step"], "description": "Step per epoch or per step."},
        "warmup_steps": {"type": "integer", "minimum": 0, "description": "Linear warm-up."}},
        "A torch.optim.lr_scheduler scheduler.")
    init_fns = sorted(catalogue.section("init"))
    defs["InitMatch"] = spec.InitMatch.model_json_schema(ref_template="#/definitions/{model}")
    props["init"] = {"type": "array", "description": "Weight initialisation rules, in order.",
                     "items": {"type": "object", "required": ["fn"], "properties": {
                         "match": {"$ref": "#/definitions/InitMatch"},
                         "fn": {"enum": init_fns, "description": "A torch.nn.init function."}},
                         "additionalProperties": {"description": "An argument of fn."}}}
    props.update(_finetune_sections(defs))
    return props, defs


def _finetune_sections(defs: dict[str, Any]) -> dict[str, Any]:
    """weights and freeze (the optimizer's groups are beside its name)."""
    from nnspec.lang import spec

    out: dict[str, Any] = {}
    for key, model, text in (("weights", spec.Weights, "Start from weights in a file."),
                             ("freeze", spec.FreezeRule, "")):
        schema = model.model_json_schema(ref_template="#/definitions/{model}")
        defs.update({k: v for k, v in schema.pop("$defs", {}).items() if k != "Location"})
        schema.pop("title", None)
        out[key] = {"anyOf": [{"type": "string", "minLength": 1, "description": "The weights "
                              "file (short for {from: FILE})."}, schema],
                    "description": text} if text else {
            "type": "array", "items": schema, "description": "Parameters that do not train "
            "(requires_grad off), by rules matching layer types and name globs."}
    return out


def _group_rule_schema() -> dict[str, Any]:
    from nnspec.lang import spec

    fields = spec.Selection.model_fields
    return {"type": "object", "required": ["match"], "description": spec.GroupRule.__doc__,
            "properties": {k: {"anyOf": [{"$ref": "#/definitions/InitMatch"},
                                         *([{"type": "null"}] if k == "unless" else [])],
                               "description": fields[k].description}
                           for k in ("match", "unless")},
            "additionalProperties": {"description": "An optimizer setting for these "
                                     "parameters (lr, weight_decay, ...): a number or an "
                                     "expression of depth and max_depth.",
                                     "anyOf": [{"type": ["number", "boolean", "array"]},
                                               {"$ref": "#/definitions/expr"}]}}


def build_schema() -> dict[str, Any]:
    training, defs = _training_sections()
    defs.update({"expr": EXPR, "item": _layer_item(), "block": _block_schema(),
                 "input": _input_schema(), "layer_name": {
                     "type": "string", "pattern": layer_name_pattern(),
                     "patternErrorMessage": NAME_HINT,
                     "description": "A layer, op or block by name, with default arguments."}})
    return {
        "$schema": DRAFT,
        "$id": "https://nnspec.dev/schema/nnspec.schema.json",
        "title": "nnspec spec (format version 2; version 1 still loads)",
        "description": "A neural network and, optionally, how to train it.",
        "type": "object",
        "required": ["nnspec", "model"],
        "additionalProperties": False,
        "properties": {
            "nnspec": {"enum": [1, 2], "description": "The spec format version: 2 (1 still "
                       "loads and builds what it always built; `nnspec upgrade` rewrites it)."},
            "name": {"type": "string", "pattern": NAME_PATTERN,
                     "description": "The model's name (also the emitted class name)."},
            "description": {"type": "string", "description": "What the model is, for people."},
            "input": {"$ref": "#/definitions/input"},
            "vars": {"type": "object", "description": "Variables: numbers, strings, lists or "
                     "expressions (${a * 2}) usable as $name anywhere below.",
                     "propertyNames": {"pattern": NAME_PATTERN},
                     "additionalProperties": {"description": "A value or an expression."}},
            "blocks": {"type": "object", "description": "Reusable sub-networks by name.",
                       "propertyNames": {"pattern": block_name_pattern(),
                                         "patternErrorMessage": NAME_HINT},
                       "additionalProperties": {"$ref": "#/definitions/block"}},
            "model": _model_schema(),
            **training,
        },
        "definitions": defs,
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"


CHECKER_FILE = Path(__file__).with_name("checker_schema.json")
EDITOR_ONLY = ("item", "block", "layer_name")  # definitions only the model and blocks use


# Keywords that only annotate (hover text, completion): validation never reads them.
ANNOTATIONS = frozenset({"description", "enumDescriptions", "defaultSnippets", "errorMessage",
                         "patternErrorMessage", "markdownDescription"})
_NAME_MAPS = frozenset({"properties", "definitions", "patternProperties"})


def checker_schema() -> dict[str, Any]:
    """The document schema, with model and blocks taking anything and no annotations (see the
    module's doc)."""
    out = build_schema()
    for key in MODEL_SECTIONS:
        out["properties"][key] = {}
    for key in EDITOR_ONLY:
        del out["definitions"][key]
    bare: dict[str, Any] = without_annotations(out)
    return bare


def without_annotations(node: Any, names: bool = False) -> Any:
    """A schema without ANNOTATIONS keywords (``names``: ``node`` maps names to schemas)."""
    if isinstance(node, list):
        return [without_annotations(item) for item in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {k: without_annotations(v) for k, v in node.items()}
    return {k: without_annotations(v, k in _NAME_MAPS) for k, v in node.items()
            if k not in ANNOTATIONS}


def checker_schema_text() -> str:
    return json.dumps(checker_schema(), indent=1, sort_keys=False) + "\n"


def load_checker_schema() -> dict[str, Any]:
    """checker_schema(), as shipped in checker_schema.json."""
    data: dict[str, Any] = json.loads(CHECKER_FILE.read_text(encoding="utf-8"))
    return data


# -- error messages ------------------------------------------------------------------------

def describe(schema: Any) -> str:
    """Words for what a schema expects: 'an integer or a list of 2 integers'."""
    if not isinstance(schema, dict):
        return "a value"
    if "$ref" in schema:
        # the other definitions are the settings sections pydantic writes (EarlyStopping...)
        return {"#/definitions/expr": "a $variable", "#/definitions/input": "an input shape"
                }.get(schema["$ref"], "a mapping of settings")
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"][:8]) + (
            ", ..." if len(schema["enum"]) > 8 else "")
    if "anyOf" in schema:
        parts = [describe(s) for s in schema["anyOf"] if s.get("$ref") != "#/definitions/expr"]
        return " or ".join(dict.fromkeys(parts))
    kind = schema.get("type")
    if kind == "array":
        n = schema.get("minItems") if schema.get("minItems") == schema.get("maxItems") else None
        item = describe(schema.get("items", {})).removeprefix("an ").removeprefix("a ")
        if n == 1:
            return f"a list of 1 {item}"
        return f"a list of {n} {item}s" if n else f"a list of {item}s"
    words = {"integer": "an integer", "number": "a number", "boolean": "true or false",
             "string": "a string", "object": "a mapping", "null": "null"}
    if isinstance(kind, list):
        return " or ".join(words.get(str(k), str(k)) for k in kind)
    return words.get(str(kind), "a valid value")


def found(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'" + (" (a string)" if value.strip().lstrip("-").isdigit() else "")
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else f"a list of {len(value)}"
    return "null" if value is None else repr(value)


def explain(error: Any) -> tuple[tuple[Any, ...], str, str | None, bool]:
    """(path, message, hint, points_at_key) for one jsonschema error."""
    path = tuple(error.absolute_path)
    v, value, schema = error.validator, error.instance, error.schema
    if v == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extras = [k for k in value if k not in allowed]
        bad = extras[0] if extras else "?"
        hint = did_you_mean(bad, allowed) or (
            f"allowed: {', '.join(allowed)}" if len(allowed) <= 12 else None)
        return (*path, bad), f"unknown key '{bad}'", hint, True
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return path, f"missing required argument '{missing}'", None, False
    bound = _bound_within(error) if v == "anyOf" else None
    if bound is not None:  # the right type, out of range: say the range (kernel_size: 0)
        return tuple(bound.absolute_path), f"expected a number {_BOUNDS[bound.validator]} " \
            f"{bound.schema[bound.validator]}, found {found(bound.instance)}", None, False
    short = _too_short_within(error) if v == "anyOf" else error if v == "minItems" and \
        "maxItems" not in schema else None
    if short is not None:  # a list, too short for the layer (MLP's hidden_channels: [])
        least = short.schema["minItems"]
        return tuple(short.absolute_path), f"expected a list of at least {least} " \
            f"item{'' if least == 1 else 's'}, found {found(short.instance)}", \
            f"give at least {least} value{'' if least == 1 else 's'}", False
    if v in ("type", "anyOf", "const", "enum") and not (v == "enum" and isinstance(value, str)):
        parent = error.parent  # one branch of an anyOf (true, false or 'auto'): say them all
        whole = parent.schema if v == "const" and parent is not None \
            and parent.validator == "anyOf" else schema
        return path, f"expected {describe(whole)}, found {found(value)}", _hint(value), False
    if v == "enum":
        return path, f"expected {describe(schema)}, found '{value}'", did_you_mean(
            value, [str(x) for x in schema["enum"]]), False
    if v in _BOUNDS:
        return path, f"expected a number {_BOUNDS[v]} {schema[v]}, found {found(value)}", \
            None, False
    if v in ("minItems", "maxItems"):
        return path, f"expected {describe(schema)}, found {found(value)}", None, False
    if v == "pattern":
        hint = ("a name starts with a letter or _" if str(value)[:1].isdigit()
                else "use letters, digits and _")
        return path, f"'{value}' is not valid here", hint, False
    return path, error.message, None, False


_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def _bound_within(error: Any) -> Any:
    """Of an anyOf's alternatives, the error of one the value matched but for a bound."""
    for sub in error.context or ():
        if sub.validator in _BOUNDS:
            return sub
    return None


def _too_short_within(error: Any) -> Any:
    """Of an anyOf's alternatives, the error of a list that has too few items."""
    for sub in error.context or ():
        if sub.validator == "minItems" and "maxItems" not in sub.schema:
            return sub
    return None


def _hint(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return "remove the quotes to write a number"
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off"):
        return "YAML 1.2: write true or false"
    if isinstance(value, float) and value.is_integer():
        return f"write {int(value)}"
    return None


if __name__ == "__main__":
    CHECKER_FILE.write_text(checker_schema_text(), encoding="utf-8")
    print(f"wrote {CHECKER_FILE}")
