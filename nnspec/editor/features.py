"""Hover, completion and go-to-definition for a spec, as plain data (the server wraps it).

Words come from the catalogue (``nnspec.catalogue.text``), the shapes from the last full check
(``nnspec.editor.analysis``), and the place in the spec from the text (``context_at``) or, for
hover and definition, from the loaded document's node locations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from nnspec import catalogue
from nnspec.catalogue import Entry
from nnspec.catalogue.text import entry_line, kind_of, param_line
from nnspec.editor.analysis import Analysis
from nnspec.editor.context import Context, context_at, word_at
from nnspec.lang.model_ast import CONTAINER_KEYS, PARAM_TYPES

MODEL_SECTIONS = ("model", "blocks")
ITEM_WORDS = ("repeat", "in", *CONTAINER_KEYS)


@dataclass(frozen=True)
class Item:
    """One completion: what to show, what to insert (a snippet when it has $1), and docs."""

    label: str
    kind: str  # layer | block | argument | section | value | variable | keyword
    insert: str
    detail: str = ""
    doc: str = ""

    @property
    def snippet(self) -> bool:
        return "$1" in self.insert


# -- the catalogue, by where a name stands ---------------------------------------------------

def _datasets() -> dict[str, Entry]:
    from nnspec.catalogue.datasets import dataset_entries

    return dataset_entries()


def named_section(chain: tuple[str, ...], key: str | None = None) -> dict[str, Entry] | None:
    """The catalogue section whose names stand here (``loss: |``, ``dataset: {|``)."""
    words = [*chain, key] if key else list(chain)
    if not words:
        return None
    last = words[-1]
    if words[0] in MODEL_SECTIONS:
        return None
    table = {"loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler",
             "transforms": "transform", "target_transforms": "transform", "fn": "init"}
    if last == "dataset":
        return _datasets()
    if last in table and (last != "fn" or words[0] == "init"):
        return catalogue.section(table[last])
    return None


def entry_of(name: str, chain: tuple[str, ...]) -> Entry | None:
    """The catalogue entry ``name`` means where it stands (a layer in the model, a loss...)."""
    if (chain and chain[0] in MODEL_SECTIONS) or not chain:
        found = catalogue.callables().get(name)
        if found or chain:
            return found
    for depth in range(len(chain), 0, -1):
        section = named_section(chain[:depth])
        if section and name in section:
            return section[name]
    return None


# -- completion ------------------------------------------------------------------------------

def complete(text: str, line: int, column: int, analysis: Analysis | None) -> list[Item]:
    ctx = context_at(text, line, column)
    data = _data(analysis)
    if ctx.prefix.startswith("$"):
        return _variables(data, ctx)
    if not ctx.chain and ctx.at_key:
        return _sections(data)
    section = named_section(ctx.chain, None if ctx.at_key else ctx.key)
    if section is not None and (not ctx.at_key or (ctx.in_flow and
                                ctx.chain[-1] in ("loss", "optimizer", "scheduler", "dataset"))):
        return [_named_item(e) for e in section.values()]
    if ctx.chain and ctx.chain[0] in MODEL_SECTIONS:
        return _model_items(ctx, data)
    owner = entry_of(ctx.chain[-1], ctx.chain[:-1]) if ctx.chain else None
    if owner is not None and ctx.at_key:
        return _arguments(owner, ctx)
    return _fields(ctx)


def _data(analysis: Analysis | None) -> dict[str, Any]:
    doc = analysis.doc if analysis else None
    return doc.data if doc is not None and isinstance(doc.data, dict) else {}


def _blocks(data: dict[str, Any]) -> dict[str, Any]:
    found = data.get("blocks")
    return found if isinstance(found, dict) else {}


def _sections(data: dict[str, Any]) -> list[Item]:
    props = _schema()["properties"]
    return [Item(k, "section", f"{k}: ", doc=props[k].get("description", ""))
            for k in props if k not in data]


def _variables(data: dict[str, Any], ctx: Context) -> list[Item]:
    names = {f"${k}": f"vars.{k} = {v!r}" for k, v in (data.get("vars") or {}).items()}
    blocks = data.get("blocks") or {}
    if ctx.chain[:1] == ("blocks",) and len(ctx.chain) > 1 and isinstance(blocks, dict):
        params = (blocks.get(ctx.chain[1]) or {}).get("params") or {}
        names.update({f"${p}": f"parameter of block {ctx.chain[1]}" for p in params})
    return [Item(n, "variable", n, d) for n, d in names.items()]


def _named_item(entry: Entry) -> Item:
    return Item(entry.name, entry.kind, entry.name, entry.kind, entry_line(entry))


def _layer_snippet(name: str, required: list[str]) -> str:
    if not required:
        return name
    return name + ": {" + ", ".join(f"{r}: ${i}" for i, r in enumerate(required, 1)) + "}"


def _model_items(ctx: Context, data: dict[str, Any]) -> list[Item]:
    """In the model or a block: a layer's arguments inside it, else layer and block names."""
    blocks = _blocks(data)
    last = ctx.chain[-1]
    if ctx.at_key and last in catalogue.callables():
        return _arguments(catalogue.callables()[last], ctx)
    if ctx.at_key and last in blocks and len(ctx.chain) > 2:
        return _block_params(last, blocks[last] or {}, ctx)
    if ctx.key in ("type",) and "params" in ctx.chain:
        return [Item(t, "value", t) for t in PARAM_TYPES]
    layers = [Item(n, "layer", _layer_snippet(n, e.required), e.kind, entry_line(e))
              for n, e in sorted(catalogue.callables().items())]
    own = [Item(n, "block", _layer_snippet(n, _required_params(b)), "block",
                str((b or {}).get("description", "")) if isinstance(b, dict) else "")
           for n, b in blocks.items()]
    words = [Item(w, "keyword", f"{w}: ") for w in ITEM_WORDS] if ctx.at_key else []
    return [*own, *layers, *words]


def _required_params(block: Any) -> list[str]:
    params = block.get("params") if isinstance(block, dict) else None
    if not isinstance(params, dict):
        return []
    return [p for p, d in params.items() if not (isinstance(d, dict) and "default" in d)]


def _block_params(name: str, block: dict[str, Any], ctx: Context) -> list[Item]:
    params = block.get("params") or {}
    return [Item(p, "argument", f"{p}: ", f"parameter of {name}", str(d))
            for p, d in params.items() if p not in ctx.given] if isinstance(params, dict) else []


def _arguments(entry: Entry, ctx: Context) -> list[Item]:
    return [Item(p.name, "argument", f"{p.name}: ", kind_of(p.schema), param_line(entry, p))
            for p in entry.params.values() if p.name not in ctx.given]


@cache
def _schema() -> dict[str, Any]:
    from nnspec.lang.schema import build_schema

    return build_schema()


def _fields(ctx: Context) -> list[Item]:
    """Keys of a training section (train, data, log, ...) from the JSON Schema."""
    node: Any = _schema()
    for key in ctx.chain:
        node = _properties(node).get(key)
        if node is None:
            return []
    if not ctx.at_key:
        node = _properties(node).get(ctx.key or "", {})
        values = _enum(node)
        return [Item(str(v), "value", str(v)) for v in values]
    return [Item(k, "argument", f"{k}: ", doc=str(v.get("description", "")))
            for k, v in _properties(node).items() if k not in ctx.given]


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _schema()["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _properties(node: Any) -> dict[str, Any]:
    node = _resolve(node)
    if not isinstance(node, dict):
        return {}
    out = dict(node.get("properties", {}))
    for option in node.get("anyOf", []) + node.get("allOf", []):
        out.update(_properties(option))
    return {k: _resolve(v) for k, v in out.items()}


def _enum(node: Any) -> list[Any]:
    node = _resolve(node)
    if not isinstance(node, dict):
        return []
    found = list(node.get("enum", []))
    for option in node.get("anyOf", []):
        found += _enum(option)
    return found


# -- hover -----------------------------------------------------------------------------------

def hover(text: str, line: int, column: int, analysis: Analysis | None) -> str | None:
    """Markdown for the word at the cursor: a layer with its shapes, an argument, a block..."""
    lines = text.split("\n")
    word, start = word_at(lines[line] if line < len(lines) else "", column)
    if not word:
        return None
    ctx = context_at(text, line, start)
    data = _data(analysis)
    if word.startswith("$"):
        return _variable_hover(word[1:], data)
    blocks = _blocks(data)
    if word in blocks and (ctx.chain[:1] != ("blocks",) or ctx.chain == ("blocks",)
                           or (ctx.at_key and ctx.chain[-1] != word)):
        return _block_hover(word, blocks.get(word), analysis, line, start)
    entry = entry_of(word, ctx.chain if ctx.at_key or ctx.chain else ())
    if entry is None and ctx.key and ctx.key not in ITEM_WORDS:
        entry = entry_of(word, (*ctx.chain, ctx.key))
    if entry is not None and (ctx.at_key or ctx.key is not None or ctx.list_item):
        if entry.kind in ("layer", "op") and word in entry.name and _is_name_here(ctx, word):
            return _layer_hover(entry, analysis, line, start)
        if entry.kind not in ("layer", "op"):
            return f"**{entry.name}** ({entry.kind})\n\n{entry_line(entry)}"
    if ctx.chain and ctx.chain[-1] in blocks and ctx.at_key:
        return _block_param_hover(word, ctx.chain[-1], blocks[ctx.chain[-1]])
    return _argument_hover(word, ctx)


def _block_param_hover(word: str, name: str, block: Any) -> str | None:
    params = block.get("params") if isinstance(block, dict) else None
    if not isinstance(params, dict) or word not in params:
        return None
    decl = params[word]
    kind = decl.get("type", "any") if isinstance(decl, dict) else decl
    default = f"; default {decl['default']!r}" if isinstance(decl, dict) and "default" in decl \
        else "; required"
    return f"{word} ({kind}{default}): a parameter of block {name}."


def _is_name_here(ctx: Context, word: str) -> bool:
    return not ctx.chain or ctx.chain[-1] != word


def _layer_hover(entry: Entry, analysis: Analysis | None, line: int, column: int) -> str:
    text = f"**{entry.name}** ({entry.kind})\n\n{entry_line(entry)}"
    return text + _shapes_text(_infos(analysis, line, column, entry.name), analysis)


def _infos(analysis: Analysis | None, line: int, column: int, name: str) -> list[Any]:
    """What the layer or block written at (line, column) is at each of its uses."""
    infos = analysis.layers.get((line + 1, column + 1), []) if analysis else []
    return [i for i in infos if i.op == name] or infos


def _shapes_text(infos: list[Any], analysis: Analysis | None) -> str:
    if not infos:
        pending = analysis is not None and not analysis.shapes_checked and not analysis.has_errors
        return "\n\n_shapes: being checked_" if pending else ""
    seen = list(dict.fromkeys(infos))
    rows = [f"`{i.inputs}` → `{i.output}`" + (f", {i.params:,} parameters"
                                              if i.params is not None else "") for i in seen[:3]]
    more = f"\n\n(and {len(seen) - 3} more)" if len(seen) > 3 else ""
    uses = f" ({len(infos)} uses)" if len(infos) > 1 else ""
    return f"\n\nShapes{uses}:\n\n" + "\n\n".join(rows) + more


def _block_hover(name: str, block: Any, analysis: Analysis | None, line: int, column: int) -> str:
    params = block.get("params") if isinstance(block, dict) else None
    signature = ", ".join(f"{p}: {d.get('type', 'any') if isinstance(d, dict) else d}"
                          + (f" = {d['default']}" if isinstance(d, dict) and "default" in d
                             else "") for p, d in (params or {}).items())
    about = block.get("description", "") if isinstance(block, dict) else ""
    text = f"**{name}**({signature}) (block defined in this spec)" + (
        f"\n\n{about}" if about else "")
    return text + _shapes_text(_infos(analysis, line, column, name), analysis)


def _variable_hover(name: str, data: dict[str, Any]) -> str | None:
    values = data.get("vars") or {}
    if name in values:
        return f"`${name}` = `{values[name]!r}` (vars)"
    return None


def _argument_hover(word: str, ctx: Context) -> str | None:
    owner_chain = ctx.chain
    if not owner_chain:
        props = _schema()["properties"]
        return str(props[word].get("description")) if word in props else None
    owner = entry_of(owner_chain[-1], owner_chain[:-1])
    if owner is not None and word in owner.params:
        return param_line(owner, owner.params[word])
    node = _properties(_schema())
    for key in owner_chain:
        node = _properties(node.get(key, {}))
    field = node.get(word)
    return str(field.get("description")) if isinstance(field, dict) and field.get(
        "description") else None


# -- go to definition -------------------------------------------------------------------------

def definition(text: str, line: int, column: int, analysis: Analysis | None
               ) -> tuple[int, int] | None:
    """Where the block (or ``$variable``) at the cursor is defined: 0-based (line, column)."""
    if analysis is None or analysis.doc is None:
        return None
    lines = text.split("\n")
    word, _ = word_at(lines[line] if line < len(lines) else "", column)
    data = _data(analysis)
    if word.startswith("$") and word[1:] in (data.get("vars") or {}):
        path: tuple[Any, ...] = ("vars", word[1:])
    elif isinstance(data.get("blocks"), dict) and word in data["blocks"]:
        path = ("blocks", word)
    else:
        return None
    where = analysis.doc.key_locations.get(path)
    return (where.line - 1, where.column - 1) if where else None


def token_end(text: str, line: int, column: int) -> int:
    """Where a diagnostic at (line, column) should end: the end of the word there."""
    lines = text.split("\n")
    current = lines[line] if 0 <= line < len(lines) else ""
    word, start = word_at(current, min(column, len(current)))
    if word and start <= column:
        return start + len(word)
    rest = re.match(r"\S*", current[column:])
    return column + max(1, len(rest.group(0)) if rest else 1)
