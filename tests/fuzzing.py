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
- ``slow``: a case over the time limit.

Case ``i`` of seed ``s`` is a pure function of ``(s, i)``, so ``bench/fuzz.py --seed s --case i``
replays it alone.  Each distinct defect (kind, exception type, innermost nnspec frame) is saved
once, minimised, by the campaign script.
"""

from __future__ import annotations

import copy
import io
import json
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
    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = rng.choice([None, True, False])
    try:
        yaml.dump(data, out)
    except Exception:
        return "case.json", json.dumps(data, default=str)
    return "case.yaml", out.getvalue()


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


class Generator:
    def __init__(self, seed: int, specs: list[tuple[str, str]] | None = None) -> None:
        self.seed = seed
        self.specs = specs if specs is not None else shipped_specs()
        self.data = [parse(text) for _, text in self.specs]
        self.mutator = Mutator(self.data)

    def case(self, index: int) -> Case:
        rng = random.Random(f"{self.seed}:{index}")
        k = rng.randrange(len(self.specs))
        name, text = self.specs[k]
        count = rng.choice([1, 1, 1, 1, 2, 3])
        how = rng.random()
        if how < 0.8 and self.data[k] is not None:
            mild = how < 0.45
            mutated = self.mutator.mutate(self.data[k], rng, count, mild=mild)
            file, out = to_text(mutated, rng)
            return Case(index, name, "mild" if mild else "structure", file, out)
        texts = [t for _, t in self.specs]
        return Case(index, name, "bytes", "case.yaml", byte_mutate(text, rng, count, texts))


# -- running a case through nnspec -----------------------------------------------------------


@dataclass
class Outcome:
    stage: str  # the last stage the case passed into: load, check, resolve, shapes, build, ok
    defects: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, detail)
    seconds: float = 0.0


class Slow(BaseException):
    """Raised by the alarm: a case ran over the time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Slow()

    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


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
                 run_forward: bool = True) -> None:
        self.max_params = max_params
        self.limit_s = limit_s
        self.run_forward = run_forward

    def __call__(self, file: str, text: str) -> Outcome:
        out = Outcome("load")
        start = time.perf_counter()
        try:
            with time_limit(self.limit_s), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._run(file, text, out)
        except Slow:
            out.defects.append(("slow", f"slow at {out.stage}", f"over {self.limit_s} s"))
        out.seconds = time.perf_counter() - start
        return out

    def _run(self, file: str, text: str, out: Outcome) -> None:
        verdict = self._validate(file, text, out, shapes=True)
        loose = self._validate(file, text, out, shapes=False)
        if verdict is True and loose is False:
            out.defects.append(("disagree", "validate --no-shapes refuses, shapes-on accepts",
                                ""))
        graph = self._pipeline(file, text, out)
        if verdict is True and graph is None and out.stage != "ok":
            out.defects.append(("disagree", f"validate accepts, {out.stage} refuses",
                                out.defects[-1][2] if out.defects else ""))
        if graph is not None:
            self._views(graph, out)
        if verdict is True and graph is not None:
            self._build(graph, out)

    def _validate(self, file: str, text: str, out: Outcome, shapes: bool) -> bool | None:
        from nnspec import api
        from nnspec.errors import NnspecError
        from nnspec.lang.loader import loads

        try:
            api.validate(loads(text, file), shapes=shapes)
            return True
        except NnspecError as exc:
            self._raw(exc, out)
            return False
        except Slow:
            raise
        except BaseException as exc:
            self._crash(exc, out, "validate" if shapes else "validate --no-shapes")
            return None

    def _pipeline(self, file: str, text: str, out: Outcome) -> Any:
        from nnspec.compiler.resolve import resolve
        from nnspec.compiler.shapes import infer
        from nnspec.errors import NnspecError
        from nnspec.lang.checker import check
        from nnspec.lang.loader import loads

        try:
            out.stage = "load"
            doc = loads(text, file)
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
        from nnspec.views.summary import render_summary

        for name, view in (("emit", emit), ("summary", render_summary),
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
        if graph.params is not None and graph.params > self.max_params:
            out.stage = "ok"
            return
        try:
            forward_backward(graph, self.run_forward)
            out.stage = "ok"
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
