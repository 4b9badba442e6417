"""A seeded fuzzer for spec files: structural and byte-level mutations of the shipped specs.

The mutators know nothing of nnspec: they take plain data (or text) and a ``random.Random``.
``run_case`` then drives one mutated spec through nnspec in-process, stage by stage (load,
check, resolve, shapes, build), and through every command that reads a spec (validate with and
without shapes, compile, emit, summary, graph), and says where the case stopped and whether it
found a defect:

- ``crash``: an exception that is not one of nnspec's own (a traceback for the user);
- ``disagree``: two commands give different verdicts on the same spec (validate accepts what
  the build, a CPU forward and backward pass, or another command refuses; ``--no-shapes``
  refuses what shapes-on accepts);
- ``raw``: a located error whose message is Python's, not nnspec's;
- ``slow``: a case over the time limit: its CPU time (so a loaded machine does not make slow
  cases), or, for a case that waits, six times the limit of wall-clock time.

Case ``i`` of seed ``s`` is a pure function of ``(s, i)``, so ``bench/fuzz.py --seed s --case i``
replays it alone.  Each distinct defect (kind, exception type, innermost nnspec frame) is saved
once, minimised, by the campaign script.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import signal
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("load", "check", "resolve", "shapes", "build", "ok")
MODEL_SECTIONS = ("input", "vars", "blocks", "model")

# -- sources ---------------------------------------------------------------------------------


def shipped_specs(root: Path = ROOT) -> list[tuple[str, str]]:
    """(name, text) of every spec in specs/ and examples/ (plugins need their module: left out)."""
    files = sorted((root / "specs").glob("*.yaml")) + sorted((root / "examples").glob("*.yaml"))
    return [(f.name, f.read_text()) for f in files]


def parse(text: str) -> Any:
    """Plain data from YAML/JSON text with ruamel's safe loader (None if it cannot)."""
    from ruamel.yaml import YAML

    try:
        return YAML(typ="safe", pure=True).load(text)
    except Exception:
        return None


# -- structural mutations ------------------------------------------------------------------

HOSTILE_SCALARS: list[Any] = [
    0, -1, 1, 2, 3, 7, 2**31, 2**63, 10**30, -(10**12), 0.5, 1.5, -0.0, 1e-8, 0.999, 1e308,
    True, False, None, "", "3", "auto", "cpu", "runs", "$x", "$width", "${10 ** 400}",
    "${a.b}", "${1/0}", "${x * 2}", "1; rm -rf /", "__import__('os')", "key\nwith newline",
    "../../etc/passwd", "/dev/zero", "\r# comment", "ｍａｔｃｈ", "nan", ".inf", [], {},
    [1, 1, 1], [0], [-1, 4], {"a": 1}, [[1]], "ReLU", "Linear", "Conv2d", "MaxPool2d",
    "Embedding", "sum", "input", "self", "class", "__init__",
]
HOSTILE_KEYS = ["repeat", "in", "out", "auto", "key\nline", "__class__", "self", "1", "",
                "inputs", "dtype", "shape", "num_workers", "val_split", "dir", "lr"]


def _paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*path, i))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(data, path[:-1])[path[-1]] = value
    return data


def _vocabulary(corpus: list[Any]) -> tuple[list[str], list[Any]]:
    """Every key and scalar of the corpus: mutations splice the specs' own words."""
    keys: set[str] = set()
    scalars: list[Any] = []
    for data in corpus:
        for path in _paths(data):
            if path and isinstance(path[-1], str):
                keys.add(path[-1])
            value = _get(data, path)
            if not isinstance(value, dict | list) and len(scalars) < 5000:
                scalars.append(value)
    return sorted(keys), scalars


def _nudge(value: Any, rng: random.Random) -> Any:
    """A nearby value of the same kind: what a careless edit produces."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, value * 2, value // 2, 0, -value, value * 1000])
    if isinstance(value, float):
        return rng.choice([value * 10, value / 10, -value, 0.0, 1.0, value + 1])
    if isinstance(value, str) and value:
        i = rng.randrange(len(value))
        return rng.choice([value[:i] + value[i + 1:], value.upper(), value + "s", value[::-1]])
    return value


class Mutator:
    """Structural mutations over the corpus's data, using the corpus's own keys and values."""

    def __init__(self, corpus: list[Any]) -> None:
        self.corpus = [d for d in corpus if d is not None]
        self.keys, self.scalars = _vocabulary(self.corpus)

    def mutate(self, data: Any, rng: random.Random, count: int, mild: bool = False) -> Any:
        """``count`` mutations; ``mild`` ones only nudge values and reuse the corpus's own."""
        data = copy.deepcopy(data)
        ops = self.MILD if mild else self.OPS
        for _ in range(count):
            data = rng.choice(ops)(self, data, rng)
        return data

    def _pick(self, data: Any, rng: random.Random, want: Callable[[Any], bool]) -> tuple[Any, ...]:
        paths = [p for p in _paths(data) if want(_get(data, p))]
        return rng.choice(paths) if paths else ()

    def nudge(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: not isinstance(v, dict | list))
        return _set(data, path, _nudge(_get(data, path), rng)) if path else data

    def hostile_value(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: True)
        return _set(data, path, copy.deepcopy(rng.choice(HOSTILE_SCALARS))) if path else data

    def corpus_value(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: not isinstance(v, dict | list))
        return _set(data, path, rng.choice(self.scalars)) if path else data

    def delete(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: True)
        if path:
            parent = _get(data, path[:-1])
            del parent[path[-1]]
        return data

    def duplicate(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: isinstance(v, list) and v)
        if path:
            items = _get(data, path)
            items.insert(rng.randrange(len(items) + 1), copy.deepcopy(rng.choice(items)))
        return data

    def add_key(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: isinstance(v, dict))
        target = _get(data, path)
        if isinstance(target, dict):
            key = rng.choice(self.keys + HOSTILE_KEYS)
            target[key] = copy.deepcopy(rng.choice([*HOSTILE_SCALARS, *self.scalars[:200]]))
        return data

    def rename_key(self, data: Any, rng: random.Random) -> Any:
        path = self._pick(data, rng, lambda v: isinstance(v, dict) and v)
        target = _get(data, path)
        if isinstance(target, dict) and target:
            old = rng.choice(list(target))
            new = rng.choice(self.keys + HOSTILE_KEYS)
            items = [(new if k == old else k, v) for k, v in target.items()]
            target.clear()
            target.update(items)
        return data

    def scalar_section(self, data: Any, rng: random.Random) -> Any:
        """A whole section (or sub-mapping) given as a scalar or a list: ``train: auto``."""
        path = self._pick(data, rng, lambda v: isinstance(v, dict | list))
        value = rng.choice(["auto", "runs", "cpu", 1, None, [1, 1, 1], True, "${10 ** 400}"])
        return _set(data, path, value) if path else data

    def graft(self, data: Any, rng: random.Random) -> Any:
        """A subtree of another spec in place of one of this spec's (same key if possible)."""
        donor = rng.choice(self.corpus)
        src = self._pick(donor, rng, lambda v: True)
        dst = self._pick(data, rng, lambda v: True)
        if src and dst:
            data = _set(data, dst, copy.deepcopy(_get(donor, src)))
        return data

    def swap(self, data: Any, rng: random.Random) -> Any:
        a = self._pick(data, rng, lambda v: True)
        b = self._pick(data, rng, lambda v: True)
        if a and b and a[: len(b)] != b and b[: len(a)] != a:
            va, vb = _get(data, a), _get(data, b)
            data = _set(data, a, vb)
            data = _set(data, b, va)
        return data

    OPS: ClassVar[list[Callable[[Mutator, Any, random.Random], Any]]] = [
        nudge, nudge, nudge, nudge, nudge, nudge, nudge, nudge, corpus_value, corpus_value,
        hostile_value, hostile_value, delete, duplicate, add_key, rename_key, scalar_section,
        graft, swap,
    ]
    MILD: ClassVar[list[Callable[[Mutator, Any, random.Random], Any]]] = [
        nudge, nudge, nudge, corpus_value, duplicate, delete]


def to_text(data: Any, rng: random.Random) -> tuple[str, str]:
    """The mutated data as (file name, text): JSON or YAML, as a user would write it."""
    if rng.random() < 0.5:
        return "case.json", json.dumps(data, indent=rng.choice([None, 2]), default=str,
                                       allow_nan=True)
    return "case.yaml", to_yaml(data, rng.choice(["block", "flow", "mixed"])) + "\n"


_PLAIN = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_.]*")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf"}


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if value != value else (".inf" if value > 0 else "-.inf")
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def to_yaml(data: Any, style: str, indent: str = "") -> str:
    """YAML text of plain data: block style, flow style, or block with flow leaves ("mixed").
    Written here (ruamel's pure-Python dumper was an eighth of a case's time)."""
    leaf = not any(isinstance(v, dict | list) for v in
                   (data.values() if isinstance(data, dict) else data)) \
        if isinstance(data, dict | list) else True
    if not isinstance(data, dict | list):
        return _scalar(data)
    if not data or style == "flow" or (style == "mixed" and leaf):
        if isinstance(data, list):
            return "[" + ", ".join(to_yaml(v, "flow") for v in data) + "]"
        return "{" + ", ".join(f"{_scalar(k)}: {to_yaml(v, 'flow')}"
                               for k, v in data.items()) + "}"
    lines = []
    items = data.items() if isinstance(data, dict) else ((None, v) for v in data)
    for key, value in items:
        head = f"{indent}- " if key is None else f"{indent}{_scalar(key)}:"
        nested = isinstance(value, dict | list) and value and not (
            style == "mixed" and not any(isinstance(v, dict | list) for v in (
                value.values() if isinstance(value, dict) else value)))
        if nested:
            lines.append(head.rstrip() + "\n" + to_yaml(value, style, indent + "  "))
        else:
            lines.append(f"{head}{'' if key is None else ' '}{to_yaml(value, style)}")
    return "\n".join(lines)


# -- targeted mutations: one fault in a spec that otherwise holds ---------------------------


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 2:
        return word + "x"
    i = rng.randrange(len(word))
    return rng.choice([word[:i] + word[i + 1:], word[:i] + word[i] * 2 + word[i + 1:],
                       word.swapcase(), word[:-1]])


def schema_values(schema: Any, rng: random.Random) -> list[Any]:
    """Values around what a catalogue argument schema accepts: its bounds, its choices and a
    typo of them, small lists; mostly valid, some just outside."""
    if not isinstance(schema, dict):
        return [None]
    if "anyOf" in schema:
        return schema_values(rng.choice(schema["anyOf"]), rng)
    if "enum" in schema:
        choices = list(schema["enum"])
        return [*choices, *choices, _typo(str(rng.choice(choices)), rng)] if choices else [""]
    kind = schema.get("type")
    if kind == "integer":
        least = schema.get("minimum", 0)
        return [least, least, least + 1, least + 2, 3, 4, least - 1, 16, 2 ** 40]
    if kind == "number":
        return [0.0, 0.1, 0.5, 1.0, 0.9, -0.5, 1e-6, 2.0, 1e9]
    if kind == "boolean":
        return [True, False]
    if kind == "string":
        return ["auto", "none", "same", "mean", "sum", ""]
    if kind == "array":
        items = schema.get("items", {})
        length = schema.get("minItems") or rng.choice([1, 2, 2, 3])
        return [[rng.choice(schema_values(items, rng)) for _ in range(length)], []]
    if kind == "null":
        return [None]
    return [None, 1, "auto"]


class Targeted:
    """Catalogue-driven mutations: each keeps the spec's structure and changes one thing a
    user would change (an argument, a layer, a repeat, an input shape, a variable, a graph edge,
    a block's argument, a training setting), so most cases get past the checker to the shape
    pass, the build and the forward pass, where the verdicts are compared."""

    def __init__(self, corpus: list[Any]) -> None:
        from nnspec import catalogue

        self.corpus = [d for d in corpus if isinstance(d, dict)]
        self.layers = catalogue.layers()
        self.entries = {**self.layers, **catalogue.ops()}
        self.sections = {key: [d[key] for d in self.corpus if key in d]
                         for key in ("data", "loss", "optimizer", "scheduler", "train", "input")}

    def mutate(self, data: Any, rng: random.Random) -> Any:
        data = copy.deepcopy(data)
        for _ in range(4):  # a mutation that finds nothing to change leaves the spec as is
            op = rng.choice(self.OPS)
            if op(self, data, rng):
                break
        return data

    def _sites(self, data: Any) -> list[tuple[dict[str, Any], str]]:
        """(mapping, key) of every catalogue layer or op written as ``{Name: args}``."""
        return [(node, key) for path in _paths(data) for node in [_get(data, path)]
                if isinstance(node, dict) for key in node if key in self.entries]

    def _unbare(self, data: Any, rng: random.Random) -> None:
        """One layer written bare (``- ReLU``, ``bn1: BatchNorm2d``) as ``{Name: {}}``."""
        bare = [(path[:-1], path[-1]) for path in _paths(data) if path
                and isinstance(_get(data, path), str) and _get(data, path) in self.layers
                and path[0] in ("model", "blocks")]
        if bare:
            parent, key = rng.choice(bare)
            container = _get(data, parent)
            container[key] = {container[key]: {}}

    def arg_value(self, data: Any, rng: random.Random) -> bool:
        if rng.random() < 0.3:
            self._unbare(data, rng)
        sites = [s for s in self._sites(data) if self.entries[s[1]].params]
        if not sites:
            return False
        node, name = rng.choice(sites)
        args = node[name] if isinstance(node[name], dict) else {}
        params = self.entries[name].params
        given = [p for p in args if p in params]
        pname = rng.choice(given if given and rng.random() < 0.6 else list(params))
        param = params[pname]
        choices = schema_values(param.schema, rng)
        if param.inferred:
            choices += ["auto", "auto"]
        args[pname] = copy.deepcopy(rng.choice(choices))
        node[name] = args
        return True

    def drop_arg(self, data: Any, rng: random.Random) -> bool:
        sites = [s for s in self._sites(data) if isinstance(s[0][s[1]], dict) and s[0][s[1]]]
        if not sites:
            return False
        node, name = rng.choice(sites)
        del node[name][rng.choice(list(node[name]))]
        return True

    def swap_layer(self, data: Any, rng: random.Random) -> bool:
        """Another layer of the same family (Conv2d -> Conv1d, MaxPool2d -> AvgPool2d, ReLU ->
        GELU), keeping the arguments it also takes."""
        sites = [s for s in self._sites(data) if s[1] in self.layers]
        if not sites:
            return False
        node, name = rng.choice(sites)
        kin = [n for n in self.layers if n != name and self._kin(name, n)]
        if not kin:
            return False
        new = rng.choice(kin)
        args = node.pop(name)
        keep = {k: v for k, v in args.items() if k in self.layers[new].params} \
            if isinstance(args, dict) else None
        node[new] = keep or None
        return True

    def _kin(self, name: str, other: str) -> bool:
        """Same stem (Conv2d, Conv1d), same rank (MaxPool2d, AvgPool2d), or both need no
        argument (ReLU, GELU, Flatten)."""
        rank = re.compile(r"[123]d$")
        if rank.sub("", name) == rank.sub("", other):
            return True
        if rank.search(name) and name[-2:] == other[-2:]:
            return True
        return not self.layers[name].required and not self.layers[other].required

    def repeat(self, data: Any, rng: random.Random) -> bool:
        sites = [node for node, _ in self._sites(data)] + [
            _get(data, p) for p in _paths(data) if isinstance(_get(data, p), dict)
            and "repeat" in _get(data, p)]
        if not sites:
            return False
        node = rng.choice(sites)
        value = rng.choice([0, 1, 2, 3, 4, 8, -1, "$depth", None])
        if value is None:
            node.pop("repeat", None)
        else:
            node["repeat"] = value
        return True

    def input_shape(self, data: Any, rng: random.Random) -> bool:
        if not isinstance(data, dict) or "input" not in data:
            return False
        where, key = data, "input"
        if isinstance(data["input"], dict):
            keys = list(data["input"])
            if not keys:
                return False
            where, key = data["input"], rng.choice(keys)
            if key == "dtype":
                data["input"]["dtype"] = rng.choice(["float32", "int64", "float64", "bool"])
                return True
            if isinstance(where[key], dict) and "shape" in where[key]:
                where, key = where[key], "shape"
        shape = where[key]
        if not isinstance(shape, list):
            return False
        shape = list(shape)
        i = rng.randrange(len(shape) + 1)
        how = rng.randrange(5)
        if how == 0:
            shape.insert(i, rng.choice([1, 2, 3, 8]))
        elif how == 1 and shape:
            del shape[min(i, len(shape) - 1)]
        elif shape:
            j = min(i, len(shape) - 1)
            size = shape[j] if isinstance(shape[j], int) else 4
            shape[j] = rng.choice([1, 2, max(1, size // 2), size * 2, size + 1, 7])
        where[key] = shape
        return True

    def variable(self, data: Any, rng: random.Random) -> bool:
        found = data.get("vars") if isinstance(data, dict) else None
        if not isinstance(found, dict) or not found:
            return False
        name = rng.choice(list(found))
        found[name] = _nudge(found[name], rng) if rng.random() < 0.8 else rng.choice(
            [1, 2, 3, 0.5, "x", None])
        return True

    def graph_edge(self, data: Any, rng: random.Random) -> bool:
        """One node of a graph reads another node (or the input) than before."""
        graphs = [_get(data, p) for p in _paths(data) if p and p[-1] == "graph"
                  and isinstance(_get(data, p), dict)]
        if not graphs:
            return False
        graph = rng.choice(graphs)
        names = [n for n in graph if isinstance(graph[n], dict | str)]
        if len(names) < 2:
            return False
        node = rng.choice(names)
        other = rng.choice([*names, "input"])
        if isinstance(graph[node], str):
            graph[node] = {graph[node]: None}
        value = graph[node]
        op = next((k for k in value if k in self.entries and isinstance(value[k], list)), None)
        if op is not None and value[op]:  # {add: [a, b]}: one of its inputs
            value[op][rng.randrange(len(value[op]))] = other
        elif rng.random() < 0.2:
            value.pop("in", None)
        else:
            value["in"] = other if rng.random() < 0.7 else [other, rng.choice(names)]
        return True

    def block_use(self, data: Any, rng: random.Random) -> bool:
        """A use of a block with one of its parameters changed or left out."""
        blocks = data.get("blocks") if isinstance(data, dict) else None
        if not isinstance(blocks, dict) or not blocks:
            return False
        uses = [(node, key) for path in _paths(data.get("model")) for node in
                [_get(data["model"], path)] if isinstance(node, dict) for key in node
                if key in blocks and isinstance(node[key], dict) and node[key]]
        if not uses:
            return False
        node, name = rng.choice(uses)
        pname = rng.choice(list(node[name]))
        if rng.random() < 0.25:
            del node[name][pname]
        else:
            node[name][pname] = _nudge(node[name][pname], rng)
        return True

    def training(self, data: Any, rng: random.Random) -> bool:
        """A training section from another spec, or one of its settings nudged."""
        key = rng.choice(["data", "loss", "optimizer", "scheduler", "train"])
        donors = self.sections.get(key) or []
        if rng.random() < 0.5 and donors:
            data[key] = copy.deepcopy(rng.choice(donors))
            return True
        section = data.get(key)
        if not isinstance(section, dict) or not section:
            return False
        leaves = [p for p in _paths(section) if p and not isinstance(_get(section, p),
                                                                     dict | list)]
        if not leaves:
            return False
        path = rng.choice(leaves)
        _set(section, path, _nudge(_get(section, path), rng))
        return True

    OPS: ClassVar[list[Callable[[Targeted, Any, random.Random], bool]]] = [
        arg_value, arg_value, arg_value, arg_value, drop_arg, swap_layer, swap_layer, repeat,
        input_shape, input_shape, variable, graph_edge, graph_edge, block_use, block_use,
        training]


# -- byte-level mutations ------------------------------------------------------------------

TOKENS = ["!!python/object/apply:os.system ['true']", "!Custom", "&a [1, 2]", "*a", "<<: *a",
          "{", "}", "[", "]", ": ", "- ", "\n", "\t", "  ", "#", '"', "'", "\\", "0x1F", "0o17",
          "0755", ".nan", "-.inf", "~", "no", "2001-01-01", "1e400", "9" * 5000, "%YAML 1.1\n",
          "---\n", "...\n", "? ", "|", ">", "\x00", "\ufeff", "\r", "é", "𝔸", "?", "$", "${"]


def byte_mutate(text: str, rng: random.Random, count: int, donors: list[str]) -> str:
    for _ in range(count):
        n = len(text)
        i = rng.randrange(n + 1)
        j = min(n, i + rng.randrange(1, 40))
        op = rng.randrange(6)
        if op == 0:
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:i] + text[i:j] * rng.randrange(2, 4) + text[j:]
        elif op == 3 and n:
            k = rng.randrange(n)
            text = text[:k] + chr(ord(text[k]) ^ (1 << rng.randrange(7))) + text[k + 1:]
        elif op == 4:
            lines = text.splitlines(keepends=True)
            donor = rng.choice(donors).splitlines(keepends=True)
            if lines and donor:
                k = rng.randrange(len(lines))
                lines[k:k] = donor[rng.randrange(len(donor)):][: rng.randrange(1, 6)]
                text = "".join(lines)
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                k = rng.randrange(len(lines))
                lines[k] = " " * rng.randrange(0, 4) + lines[k].lstrip(" ")
                text = "".join(lines)
    return text


# -- cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    source: str
    how: str
    file: str
    text: str


# How a case is made, by share of the cases: targeted (one catalogue-driven fault in a spec that
# otherwise holds), mild (nudged values), structure (hostile values, scalar sections, grafts,
# renamed keys) and bytes (the text itself).
MIX = (("targeted", 0.40), ("mild", 0.20), ("structure", 0.22), ("bytes", 0.18))


class Generator:
    def __init__(self, seed: int, specs: list[tuple[str, str]] | None = None) -> None:
        self.seed = seed
        self.specs = specs if specs is not None else shipped_specs()
        self.data = [parse(text) for _, text in self.specs]
        self.mutator = Mutator(self.data)
        self.targeted = Targeted(self.data)

    def case(self, index: int) -> Case:
        rng = random.Random(f"{self.seed}:{index}")
        k = rng.randrange(len(self.specs))
        name, text = self.specs[k]
        count = rng.choice([1, 1, 1, 1, 2, 3])
        how = _choose(rng.random())
        if how != "bytes" and self.data[k] is not None:
            if how == "targeted":
                mutated = self.targeted.mutate(self.data[k], rng)
            else:
                mutated = self.mutator.mutate(self.data[k], rng, count, mild=how == "mild")
            file, out = to_text(mutated, rng)
            return Case(index, name, how, file, out)
        texts = [t for _, t in self.specs]
        return Case(index, name, "bytes", "case.yaml", byte_mutate(text, rng, count, texts))


def _choose(draw: float) -> str:
    for how, share in MIX:
        if draw < share:
            return how
        draw -= share
    return MIX[-1][0]


# -- running a case through nnspec -----------------------------------------------------------


@dataclass
class Outcome:
    stage: str  # the last stage the case passed into: load, check, resolve, shapes, build, ok
    defects: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, detail)
    seconds: float = 0.0  # wall-clock time
    cpu_seconds: float = 0.0  # this process's CPU time (user and system): what "slow" judges
    macs: int | None = None  # per sample, from the summary
    built: bool = False  # the CPU forward and backward pass ran


class Slow(BaseException):
    """Raised by an alarm: a case ran over its CPU time limit (``args[0]`` "CPU"), or over its
    wall-clock limit ("wall": a case that waits rather than computes)."""


# A case's wall-clock limit, in multiples of its CPU limit: only a case that waits reaches it
WALL_FACTOR = 6


@contextmanager
def time_limit(seconds: float, wall_factor: float = WALL_FACTOR) -> Iterator[None]:
    """Raise Slow once this process has spent ``seconds`` of CPU time (user and system, counted
    by ITIMER_PROF: a machine loaded by other work does not make a case slow), or
    ``wall_factor`` times that in wall-clock time."""
    def ring(kind: str) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            raise Slow(kind)
        return handler

    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    old_prof = signal.signal(signal.SIGPROF, ring("CPU"))
    old_real = signal.signal(signal.SIGALRM, ring("wall"))
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * wall_factor)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, old_prof)
        signal.signal(signal.SIGALRM, old_real)


def crash_key(exc: BaseException) -> str:
    """Exception type and the innermost nnspec frame: one key per distinct crash."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/nnspec/" in f.filename]
    where = "?"
    if frames:
        f = frames[-1]
        where = f"{f.filename.rsplit('/nnspec/', 1)[-1]}:{f.name}"
    return f"{type(exc).__name__} at {where}"


RAW_MESSAGES = re.compile(
    r"not supported between instances|object has no attribute|unhashable type|"
    r"object is not (subscriptable|iterable|callable)|index out of range|invalid literal for|"
    r"dictionary update sequence|Traceback|validation error for|pydantic")


class Probe:
    """Runs one case through nnspec; every call returns an Outcome."""

    def __init__(self, max_params: int = 1_000_000, limit_s: float = 5.0,
                 run_forward: bool = True, max_macs: int = 20_000_000) -> None:
        self.max_params = max_params
        self.max_macs = max_macs  # per sample: a bigger model's CPU pass is left out
        self.limit_s = limit_s
        self.run_forward = run_forward

    def __call__(self, file: str, text: str) -> Outcome:
        out = Outcome("load")
        start, cpu = time.perf_counter(), time.process_time()
        try:
            with time_limit(self.limit_s), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._run(file, text, out)
        except Slow as exc:
            kind = exc.args[0] if exc.args else "CPU"
            limit = self.limit_s * (1 if kind == "CPU" else WALL_FACTOR)
            out.defects.append(("slow", f"slow at {out.stage}" + (" (wall)" if kind == "wall"
                                                                  else ""),
                                f"over {limit} s of {kind} time"))
        out.seconds = time.perf_counter() - start
        out.cpu_seconds = time.process_time() - cpu
        return out

    def _run(self, file: str, text: str, out: Outcome) -> None:
        doc = self._load(file, text, out)  # every command reads the text alike: read it once
        if doc is None:
            return
        verdict = self._validate(doc, out, shapes=True)
        accepted = None if verdict is None or verdict is False else verdict
        loose = self._validate(doc, out, shapes=False)
        if accepted is not None and loose is False:
            out.defects.append(("disagree", "validate --no-shapes refuses, shapes-on accepts",
                                ""))
        # compile, summary and graph run check, resolve and infer, as validate does: on a spec
        # validate accepted they would repeat its work to the same graph (check is check_partial
        # raising its problems), so they are run to find their own verdict only on the rest
        graph = accepted if accepted is not None else self._pipeline(doc, out)
        if accepted is not None:
            out.stage = "build"
        if graph is not None:
            self._views(graph, out)
        if accepted is not None:
            self._build(graph, out)

    def _load(self, file: str, text: str, out: Outcome) -> Any:
        from nnspec.errors import NnspecError
        from nnspec.lang.loader import loads

        try:
            return loads(text, file)
        except NnspecError as exc:
            self._raw(exc, out)
        except Slow:
            raise
        except BaseException as exc:
            self._crash(exc, out, "load")
        return None

    def _validate(self, doc: Any, out: Outcome, shapes: bool) -> Any:
        """The graph validate returns, False if it refuses the spec, None if it crashed."""
        from nnspec import api
        from nnspec.errors import NnspecError

        try:
            return api.validate(doc, shapes=shapes)
        except NnspecError as exc:
            self._raw(exc, out)
            return False
        except Slow:
            raise
        except BaseException as exc:
            self._crash(exc, out, "validate" if shapes else "validate --no-shapes")
            return None

    def _pipeline(self, doc: Any, out: Outcome) -> Any:
        from nnspec.compiler.resolve import resolve
        from nnspec.compiler.shapes import infer
        from nnspec.errors import NnspecError
        from nnspec.lang.checker import check

        try:
            out.stage = "check"
            spec = check(doc)
            out.stage = "resolve"
            graph = resolve(spec)
            out.stage = "shapes"
            graph = infer(graph)
            out.stage = "build"
            return graph
        except NnspecError as exc:
            self._raw(exc, out)
        except Slow:
            raise
        except BaseException as exc:
            self._crash(exc, out, out.stage)
        return None

    def _views(self, graph: Any, out: Outcome) -> None:
        from nnspec.compiler.emit.emitter import emit
        from nnspec.errors import NnspecError
        from nnspec.views.diagram import render_diagram
        from nnspec.views.summary import format_summary, summarise

        def summary(g: Any) -> str:
            found = summarise(g)
            out.macs = found.macs  # what the CPU pass would cost, per sample
            return format_summary(found)

        for name, view in (("emit", emit), ("summary", summary),
                           ("graph", lambda g: render_diagram(g, "mermaid"))):
            try:
                view(graph)
            except NnspecError as exc:
                self._raw(exc, out)
                out.defects.append(("disagree", f"shapes accept, {name} refuses",
                                    str(exc)[:300]))
            except Slow:
                raise
            except BaseException as exc:
                self._crash(exc, out, name)

    def _build(self, graph: Any, out: Outcome) -> None:
        if (graph.params is not None and graph.params > self.max_params) or \
                out.macs is None or out.macs > self.max_macs or \
                activations(graph.root) > self.max_macs:
            out.stage = "ok"  # too big to run here: validate's verdict stands unchecked
            return
        try:
            forward_backward(graph, self.run_forward)
            out.stage = "ok"
            out.built = True
        except Slow:
            raise
        except BaseException as exc:
            out.defects.append(("disagree", f"validate accepts, CPU build fails: "
                                            f"{crash_key(exc)}", _first_line(exc)))

    def _crash(self, exc: BaseException, out: Outcome, where: str) -> None:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        out.defects.append(("crash", crash_key(exc), f"{where}: {_first_line(exc)}"))

    def _raw(self, exc: Any, out: Outcome) -> None:
        text = str(exc)
        match = RAW_MESSAGES.search(text)
        if match:
            out.defects.append(("raw", f"raw message: {match.group(0)}", text[:300]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def activations(net: Any) -> int:
    """Elements of every value a sample makes on its way through ``net`` (what the CPU pass
    holds for the backward pass): layers that count no MACs can still be costly."""
    from nnspec.compiler.ir import Net, TensorInfo

    total = 0
    for node in net.nodes:
        if isinstance(node.body, Net):
            total += activations(node.body)
        outs = node.out if isinstance(node.out, tuple) else (node.out,)
        for value in outs:
            if isinstance(value, TensorInfo):
                total += math.prod(value.shape)
    return total


def forward_backward(graph: Any, backward: bool = True, batch: int = 2) -> None:
    """Build the graph's module on the CPU and run ``batch`` samples forward (and backward)."""
    import torch

    from nnspec.compiler.build import build

    model = build(graph)
    xs = []
    for info in graph.inputs.values():
        dtype = getattr(torch, info.dtype) if info.dtype != "long" else torch.long
        shape = (batch, *info.shape)
        xs.append(torch.randn(shape, dtype=dtype) if dtype.is_floating_point
                  else torch.zeros(shape, dtype=dtype))
    result = model(*xs)
    if not backward:
        return
    leaves = [t for t in _tensors(result) if t.requires_grad and t.dtype.is_floating_point]
    if leaves:
        sum(t.float().sum() for t in leaves).backward()  # type: ignore[union-attr]


def _tensors(value: Any) -> Iterator[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)


# -- minimising ------------------------------------------------------------------------------


def minimise(file: str, text: str, still_fails: Callable[[str, str], bool],
             budget: int = 150) -> tuple[str, str]:
    """A smaller spec with the same defect: drop subtrees (structure) or lines (text)."""
    data = parse(text)
    if isinstance(data, dict):
        return _minimise_data(data, still_fails, budget, file, text)
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and budget > 0:
        trial = "".join(lines[:i] + lines[i + 1:])
        budget -= 1
        if still_fails(file, trial):
            lines = lines[:i] + lines[i + 1:]
        else:
            i += 1
    return file, "".join(lines)


def _minimise_data(data: Any, still_fails: Callable[[str, str], bool], budget: int,
                   file: str, text: str) -> tuple[str, str]:
    def render(d: Any) -> str:
        return json.dumps(d, indent=1, default=str)

    if not still_fails("case.json", render(data)):
        return file, text  # the defect needs the text's own form
    changed = True
    while changed and budget > 0:
        changed = False
        for path in sorted(_paths(data), key=len):
            if not path or budget <= 0:
                continue
            trial = copy.deepcopy(data)
            try:
                del _get(trial, path[:-1])[path[-1]]
            except (KeyError, IndexError, TypeError):
                continue
            budget -= 1
            if still_fails("case.json", render(trial)):
                data, changed = trial, True
                break
    return "case.json", render(data)
