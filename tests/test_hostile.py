"""Hostile and mistaken specs (THREATS.md, "Parsing" and "Meaning").

Every case must give a located error (FILE:LINE:COL) through the real CLI with exit code 2, in
well under a second for the check itself, with no traceback, no file written, nothing run and
no module imported that the spec names.  The CLI runs under an audit hook (sys.addaudithook)
that records imports, process launches, network connections and writes, so "nothing executed"
is observed, not assumed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnspec.api
from nnspec.errors import SpecError
from nnspec.lang import loader
from tests.conftest import ROOT, SPECS, run_cli

# Modules a hostile spec names that nnspec itself never imports: if one shows up in
# sys.modules after a check, the spec's text reached an import.
NAMED_MODULES = ("antigravity", "this", "smtplib", "webbrowser", "ftplib", "pty", "turtle")

_AUDITED_CLI = textwrap.dedent("""
    import contextlib, io, json, sys
    sys.dont_write_bytecode = True
    events = []
    WATCH = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.remove",
             "os.rename", "os.mkdir", "shutil.rmtree", "subprocess.Popen", "socket.connect",
             "socket.getaddrinfo", "urllib.Request", "ctypes.dlopen", "pickle.find_class")
    def hook(name, args):
        if name in WATCH:
            events.append(name)
        elif name == "open" and isinstance(args[1], str) and set(args[1]) & set("wax+"):
            events.append(f"open {args[0]} {args[1]}")
    sys.addaudithook(hook)
    from nnspec.cli import app
    results = {}
    for path in sys.argv[1:]:
        del events[:]
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                app(["validate", path])
                code = 0
            except SystemExit as exc:
                code = exc.code
        named = [m for m in NAMED if m in sys.modules]
        results[path] = {"code": code, "events": list(events), "imported": named,
                         "stderr": err.getvalue()}
    print(json.dumps(results))
""").replace("NAMED", repr(NAMED_MODULES))

# THREATS.md asks for an answer "within a second"; these checks typically take well under
# 0.1 s, and a real bomb takes minutes.  The bound leaves room for a loaded shared machine so
# the test catches explosions without flaking (timing claims are made by bench/, not tests).
QUICK = 5.0


def audited_validate(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """``nnspec validate`` of each path (the CLI's own entry point, one interpreter for all,
    to keep the suite fast) under the audit hook; per path: exit code, events, stderr."""
    proc = subprocess.run([sys.executable, "-c", _AUDITED_CLI, *map(str, paths)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return results


def timed_validate(path: Path, *, shapes: bool = True) -> tuple[float, SpecError | None]:
    start = time.perf_counter()
    try:
        nnspec.api.validate(path, shapes=shapes)
        error = None
    except SpecError as exc:
        error = exc
    return time.perf_counter() - start, error


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """Import torch and build the schema once, so timings measure the check, not imports."""
    nnspec.api.validate(SPECS / "lenet.yaml")


def assert_refused(path: Path, line: int, column: int, words: str,
                   audit: dict[str, Any]) -> None:
    """The full contract of a hostile case (see the module docstring)."""
    seconds, error = timed_validate(path)
    assert error is not None, "the spec was accepted"
    assert seconds < QUICK, f"the check took {seconds:.2f} s (typically well under 0.1 s)"
    first = error.problems[0]
    assert (first.location.file, first.location.line, first.location.column) == (
        str(path), line, column), error.render()
    assert words in first.message, error.render()
    stderr = audit["stderr"]
    assert audit["code"] == 2, stderr
    assert stderr.startswith(f"{path}:{line}:{column}: error: "), stderr
    assert all(ln.startswith(f"{path}:") for ln in stderr.splitlines()), stderr
    assert "Traceback" not in stderr
    assert audit["events"] == [] and audit["imported"] == [], audit
    assert [p.name for p in path.parent.iterdir()] == [path.name], "a file was written"


HUGE = "9" * 5000

# (id, text, line, column, words in the first message)
PARSING = [
    ("tag-python-apply", "nnspec: 1\nmodel:\n  - !!python/object/apply:os.system [ls]\n",
     3, 5, "!!python/object/apply:os.system"),
    ("tag-python-name", "nnspec: 1\nmodel:\n  - !!python/name:os.system\n", 3, 5,
     "YAML tags are not allowed"),
    ("tag-python-object-nested", "nnspec: 1\nmodel:\n  - {a: {b: [x, !!python/object:os.x y]}}\n",
     3, 17, "!!python/object:os.x"),
    ("tag-custom-on-value", "nnspec: 1\nmodel:\n  - !Layer ReLU\n", 3, 5, "'!Layer'"),
    ("tag-custom-on-key", "nnspec: 1\nmodel:\n  !Layer fc: ReLU\n", 3, 3, "'!Layer'"),
    ("tag-binary", "nnspec: 1\nmodel:\n  - !!binary aGVsbG8=\n", 3, 5, "'!!binary'"),
    ("tag-set", "nnspec: 1\nmodel: !!set {a, b}\n", 2, 8, "'!!set'"),
    ("tag-omap", "nnspec: 1\nmodel: !!omap [a: ReLU]\n", 2, 8, "'!!omap'"),
    ("tag-str-even-harmless", "nnspec: 1\nmodel: !!str ReLU\n", 2, 8, "'!!str'"),
    ("tag-directive", "%TAG !e! tag:evil.example,2000:\n---\nnnspec: 1\nmodel: [!e!x ReLU]\n",
     4, 9, "YAML tags are not allowed"),
    ("billion-laughs", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
     1, 4, "anchors"),
    ("alias-without-anchor", "nnspec: 1\nmodel: [*x]\n", 2, 9, "aliases (*name) are not allowed"),
    ("merge-key", "nnspec: 1\nmodel:\n  a: ReLU\n  <<: {b: ReLU}\n", 4, 3, "merge keys"),
    ("deep-yaml-flow", "nnspec: 1\nmodel: " + "[" * 10_000 + "]" * 10_000 + "\n", 2, 71,
     "nesting deeper than"),
    ("deep-yaml-mapping", "nnspec: 1\nmodel: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
     2, 260, "nesting deeper than"),
    ("huge-int-5000-digits", f"nnspec: 1\ninput: [{HUGE}]\nmodel: [ReLU]\n", 2, 9,
     "5000 digits"),
    ("int-2-pow-64", "nnspec: 1\ninput: [18446744073709551616]\nmodel: [ReLU]\n", 2, 9,
     "out of range"),
    ("float-overflow", "nnspec: 1\ninput: [4]\nmodel: [{Dropout: {p: 1e400}}]\n", 3, 23,
     "out of range"),
    ("key-int", "nnspec: 1\n1: 2\nmodel: [ReLU]\n", 2, 1, "keys must be strings"),
    ("key-null", "nnspec: 1\nnull: 2\nmodel: [ReLU]\n", 2, 1, "keys must be strings"),
    ("key-bool", "nnspec: 1\nmodel:\n  true: ReLU\n", 3, 3, "keys must be strings"),
    ("key-list", "nnspec: 1\n[a, b]: 2\nmodel: [ReLU]\n", 2, 1, "found a list"),
    ("key-complex", "nnspec: 1\n? {a: 1}\n: 2\nmodel: [ReLU]\n", 2, 3, "found a mapping"),
    ("duplicate-top", "nnspec: 1\nmodel: [ReLU]\nmodel: [Tanh]\n", 3, 1, "duplicate key"),
    ("duplicate-nested", "nnspec: 1\nmodel:\n  - Linear: {out_features: 3, out_features: 4}\n",
     3, 31, "duplicate key 'out_features'"),
    ("nan-yaml", "nnspec: 1\ninput: [4]\nmodel: [{Dropout: {p: .nan}}]\n", 3, 23, "non-finite"),
    ("inf-yaml", "nnspec: 1\ninput: [4]\nmodel: [{Dropout: {p: .inf}}]\n", 3, 23, "non-finite"),
    ("minus-inf-yaml", "nnspec: 1\ninput: [4]\nmodel: [{Dropout: {p: -.inf}}]\n", 3, 23,
     "non-finite"),
    ("yaml11-no-as-bool", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 3, bias: no}}]"
     "\n", 3, 42, "expected true or false, found 'no'"),
    ("yaml11-yes-as-bool", "nnspec: 1\ninput: [4]\nmodel: [{ReLU: {inplace: yes}}]\n", 3, 26,
     "found 'yes'"),
    ("yaml11-on-as-bool", "nnspec: 1\nmodel: [ReLU]\ntrain: {deterministic: on}\n", 3, 24,
     "found 'on'"),
    ("yaml11-octal", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 0755}}]\n", 3, 33,
     "leading zero"),
    ("yaml11-date", "nnspec: 1\nname: 2024-01-01\nmodel: [ReLU]\n", 2, 7, "looks like a date"),
    ("yaml11-sexagesimal", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 1:20}}]\n",
     3, 33, "expected an integer, found '1:20'"),
    ("multiple-documents", "nnspec: 1\nmodel: [ReLU]\n---\nnnspec: 1\nmodel: [ReLU]\n", 3, 1,
     "one YAML document"),
    ("empty-file", "", 1, 1, "empty"),
    ("only-a-comment", "# nothing here\n", 1, 1, "empty"),
    ("not-a-mapping", "- ReLU\n", 1, 1, "a spec is a mapping"),
    ("control-character", "nnspec: 1\nmodel: [ReL\x01U]\n", 1, 1, "invalid YAML"),
    ("tab-indentation", "nnspec: 1\nmodel:\n\t- ReLU\n", 3, 1, "invalid YAML"),
    ("crlf-locations-stay-right", "nnspec: 1\r\ninput: [4]\r\nmodel:\r\n  - Relu\r\n", 4, 5,
     "unknown layer 'Relu'"),
    ("tab-inside-flow-locations", "nnspec: 1\ninput: [4]\nmodel: [{Linear:\t{out_features: 3}},"
     " Relu]\n", 3, 38, "unknown layer 'Relu'"),
]

JSON_CASES = [
    ("json-duplicate-top", '{"nnspec": 1, "model": ["ReLU"], "model": ["Tanh"]}', 1, 34,
     "duplicate key"),
    ("json-duplicate-nested", '{"nnspec": 1,\n "model": [{"Linear": {"out_features": 3, '
     '"out_features": 4}}]}', 2, 43, "duplicate key"),
    ("json-nan", '{"nnspec": 1, "input": [4],\n "model": [{"Dropout": {"p": NaN}}]}', 2, 30,
     "non-finite"),
    ("json-infinity", '{"nnspec": 1, "input": [4],\n "model": [{"Dropout": {"p": -Infinity}}]}',
     2, 30, "non-finite"),
    ("json-deep", '{"nnspec": 1, "model": ' + "[" * 10_000 + "]" * 10_000 + "}", 1, 87,
     "nesting deeper than"),
    ("json-huge-int", '{"nnspec": 1, "input": [' + HUGE + '], "model": ["ReLU"]}', 1, 25,
     "5000 digits"),
    ("json-syntax", '{"nnspec": 1,\n "model": ["ReLU",]}', 2, 19, "invalid JSON"),
]

MEANING = [
    ("layer-os-system", "nnspec: 1\ninput: [4]\nmodel:\n  - os.system: {command: ls}\n", 4, 5,
     "unknown layer 'os.system'"),
    ("layer-dunder-import", "nnspec: 1\ninput: [4]\nmodel: [__import__]\n", 3, 9,
     "unknown layer '__import__'"),
    ("layer-eval", "nnspec: 1\ninput: [4]\nmodel: [{eval: [\"1\"]}]\n", 3, 10,
     "unknown layer 'eval'"),
    ("layer-dotted-torch", "nnspec: 1\ninput: [4]\nmodel: [torch.nn.Linear]\n", 3, 9,
     "unknown layer 'torch.nn.Linear'"),
    ("layer-named-module", "nnspec: 1\ninput: [4]\nmodel: [antigravity.fly, this]\n", 3, 9,
     "unknown layer 'antigravity.fly'"),
    ("dataset-subprocess", "nnspec: 1\nmodel: [ReLU]\ndata: {dataset: subprocess}\n", 3, 17,
     "unknown dataset 'subprocess'"),
    ("dataset-module-with-args", "nnspec: 1\nmodel: [ReLU]\ndata: {dataset: {smtplib.SMTP: "
     "{host: x}}}\n", 3, 18, "unknown dataset 'smtplib.SMTP'"),
    ("loss-torch-load", "nnspec: 1\nmodel: [ReLU]\nloss: torch.load\n", 3, 7,
     "unknown loss 'torch.load'"),
    ("optimizer-builtins-exec", "nnspec: 1\nmodel: [ReLU]\noptimizer: {builtins.exec: "
     "{source: x}}\n", 3, 13, "unknown optimizer 'builtins.exec'"),
    ("scheduler-webbrowser", "nnspec: 1\nmodel: [ReLU]\nscheduler: webbrowser.open\n", 3, 12,
     "unknown scheduler 'webbrowser.open'"),
    ("init-os-remove", "nnspec: 1\nmodel: [ReLU]\ninit: [{fn: os.remove, path: /}]\n", 3, 13,
     "unknown init function 'os.remove'"),
    ("transform-ftplib", "nnspec: 1\nmodel: [ReLU]\ndata: {dataset: MNIST, transforms: "
     "[ftplib.FTP]}\n", 3, 37, "unknown transform 'ftplib.FTP'"),
    ("module-name-dunder", "nnspec: 1\ninput: [4]\nmodel:\n  __class__: ReLU\n", 4, 3,
     "not a valid module name"),
    ("spec-name-code", "nnspec: 1\nname: \"os.system('rm -rf /')\"\nmodel: [ReLU]\n", 2, 7,
     "is not valid here"),
    ("loose-quoted-int", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: \"3\"}}]\n",
     3, 33, "expected an integer, found '3'"),
    ("loose-bool-for-int", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: true}}]\n",
     3, 33, "expected an integer, found true"),
    ("loose-float-for-int", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: 3.0}}]\n",
     3, 33, "expected an integer, found 3.0"),
    ("loose-float-for-int-training", "nnspec: 1\nmodel: [ReLU]\ntrain: {epochs: 3.0}\n", 3, 17,
     "expected an integer, found 3.0"),
    ("loose-nan-positive-float", "nnspec: 1\nmodel: [ReLU]\ntrain: {grad_clip: .nan}\n", 3, 20,
     "non-finite"),
    ("negative-positive-float", "nnspec: 1\nmodel: [ReLU]\ntrain: {grad_clip: -1.5}\n", 3, 20,
     "expected a number > 0, found -1.5"),
    ("repeat-million", "nnspec: 1\ninput: [4]\nmodel:\n  - {Linear: {out_features: 4}, "
     "repeat: 1000000}\n", 4, 41, "over the limit"),
    ("nested-block-repeats", "nnspec: 1\ninput: [4]\nblocks:\n"
     "  A: {sequential: [{ReLU: null, repeat: 100}]}\n  B: {sequential: [{A: {}, repeat: 100}]}\n"
     "  C: {sequential: [{B: {}, repeat: 100}]}\nmodel: [{C: {}, repeat: 100}]\n", 5, 21,
     "more than 10000 nodes"),
    ("block-recursion", "nnspec: 1\ninput: [4]\nblocks:\n  A: {sequential: [B]}\n"
     "  B: {sequential: [A]}\nmodel: [A]\n", 5, 20, "uses itself"),
    ("expr-tower-of-powers", "nnspec: 1\ninput: [4]\nvars: {n: \"${10**10**10}\"}\n"
     "model: [ReLU]\n", 3, 11, "too large"),
    ("expr-import", "nnspec: 1\ninput: [4]\nvars: {n: \"${__import__('antigravity')}\"}\n"
     "model: [ReLU]\n", 3, 11, "is not allowed"),
    ("expr-attribute", "nnspec: 1\ninput: [4]\nvars: {w: 4, n: \"${w.__class__}\"}\n"
     "model: [ReLU]\n", 3, 17, "is not allowed"),
    ("expr-lambda", "nnspec: 1\ninput: [4]\nvars: {n: \"${(lambda: 1)()}\"}\nmodel: [ReLU]\n",
     3, 11, "is not allowed"),
    ("expr-comprehension", "nnspec: 1\ninput: [4]\nvars: {n: \"${[x for x in (1, 2)]}\"}\n"
     "model: [ReLU]\n", 3, 11, "is not allowed"),
    ("expr-deep-unary", "nnspec: 1\ninput: [4]\nvars: {n: \"${" + "-" * 400 + "1}\"}\n"
     "model: [ReLU]\n", 3, 11, "nested deeper"),
    ("expr-long", "nnspec: 1\ninput: [4]\nvars: {n: \"${" + "-" * 100_000 + "1}\"}\n"
     "model: [ReLU]\n", 3, 11, "over the limit"),
    ("expr-compare-str-int", "nnspec: 1\ninput: [4]\nvars: {n: \"${1 < 'a'}\"}\n"
     "model: [ReLU]\n", 3, 11, "cannot compare"),
    ("expr-in-layer-arg", "nnspec: 1\ninput: [4]\nmodel: [{Linear: {out_features: "
     "\"${open('/etc/passwd')}\"}}]\n", 3, 33, "is not allowed"),
]


BYTES_CASES = [
    ("invalid-utf8", b"nnspec: 1\nmodel: [\xff\xfe]\n", 2, 9, "not UTF-8"),
    ("latin-1", b"nnspec: 1\nname: caf\xe9\nmodel: [ReLU]\n", 2, 10, "0xe9"),
    ("utf-16", "nnspec: 1\nmodel: [ReLU]\n".encode("utf-16"), 1, 1, "not UTF-8"),
    ("binary", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), 2, 118, "0x80"),
    ("bom-keeps-columns", b"\xef\xbb\xbfnnspec: 1\ninput: [4]\nmodel: [Relu]\n", 3, 9,
     "unknown layer"),
    ("oversize", b"nnspec: 1\nmodel: [ReLU]\n# " + b"x" * loader.MAX_BYTES + b"\n", 1, 1,
     "over the"),
    # the root, nnspec's value, input's list and item, model's list: 5 values before the layers
    ("too-many-values", b"nnspec: 1\ninput: [4]\nmodel:\n" + b"  - ReLU\n" * (loader.MAX_NODES + 9),
     4 + loader.MAX_NODES - 5, 5, f"more than {loader.MAX_NODES} values"),
]

ALL_CASES = {c[0]: (".yaml", c[1].encode(), *c[2:]) for c in PARSING + MEANING}
ALL_CASES |= {c[0]: (".json", c[1].encode(), *c[2:]) for c in JSON_CASES}
ALL_CASES |= {c[0]: (".yaml", *c[1:]) for c in BYTES_CASES}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case in a directory of its own (so 'nothing written' can be checked per case)."""
    root = tmp_path_factory.mktemp("hostile")
    paths = {}
    for case, (suffix, data, *_) in ALL_CASES.items():
        (root / case).mkdir()
        paths[case] = root / case / f"spec{suffix}"
        paths[case].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def audits(written: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return audited_validate(list(written.values()))


@pytest.mark.parametrize("case", list(ALL_CASES))
def test_hostile_spec_is_a_located_error_with_no_side_effect(
        case: str, written: dict[str, Path], audits: dict[str, dict[str, Any]]) -> None:
    _, _, line, column, words = ALL_CASES[case]
    path = written[case]
    assert_refused(path, line, column, words, audits[str(path)])


@pytest.mark.parametrize("case", ["tag-python-apply", "billion-laughs", "layer-named-module",
                                  "json-nan", "invalid-utf8"])
def test_hostile_spec_through_python_m_nnspec(case: str, written: dict[str, Path]) -> None:
    """A few cases through a fresh ``python -m nnspec``, exactly as a user runs it."""
    path = written[case]
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:{ALL_CASES[case][2]}:{ALL_CASES[case][3]}: error:")
    assert "Traceback" not in result.stderr


# -- resource bombs in a valid-looking spec ---------------------------------------------------

def test_trillion_parameter_linear_validates_on_shapes_without_allocating(
        tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("nnspec: 1\ninput: [1000000]\nmodel:\n  - Linear: {out_features: 1000000}\n")
    start = time.perf_counter()
    graph = nnspec.api.validate(path)
    assert time.perf_counter() - start < QUICK
    assert graph.params == 10**12 + 10**6
    result = subprocess.run([sys.executable, "-m", "nnspec", "validate", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "1,000,001,000,000 parameters" in result.stdout


def test_trillion_parameter_linear_is_refused_at_build(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("nnspec: 1\ninput: [1000000]\nmodel:\n  - Linear: {out_features: 1000000}\n")
    start = time.perf_counter()
    with pytest.raises(SpecError, match="1,000,001,000,000 parameters, over the limit"):
        nnspec.api.compile(path)
    assert time.perf_counter() - start < QUICK


def test_huge_batch_size_is_valid_because_batches_never_exceed_the_dataset(
        tmp_path: Path) -> None:
    """Decision: batch_size is any positive integer up to the loader's ±2**63 bound.

    A batch is a slice of the dataset (resident tensors or a DataLoader over indices), so a
    batch_size of 10**9 costs no more than one batch of the whole dataset: it is not a
    resource bomb, and refusing it would only stop "one batch = everything" on purpose.
    """
    path = tmp_path / "spec.yaml"
    path.write_text("nnspec: 1\ninput: [1, 28, 28]\nmodel: [Flatten, {Linear: {out_features: 10}}]"
                    "\ndata: {dataset: MNIST, batch_size: 1000000000}\nloss: CrossEntropyLoss\n")
    seconds, error = timed_validate(path)
    assert error is None and seconds < QUICK
    path.write_text(path.read_text().replace("1000000000", "0"))
    assert "expected a number > 0, found 0" in str(timed_validate(path)[1])


# -- fuzzing the loader ---------------------------------------------------------------------

YAMLISH = st.lists(st.sampled_from([*"{}[]:,-?!&*|>'\"#%@` \n\t.0123456789e+",
                                    "nnspec", "model", "ReLU", "!!python/", "<<", "---", "...",
                                      "&a ", "*a", ".nan", "0x", "~", "\r\n", "\ufeff", "\x00",
                                      "\u2028", "- ", "\n  ", "\n    "]),
                   max_size=80).map("".join)


def _only_spec_errors(call: object) -> None:
    start = time.perf_counter()
    try:
        call()  # type: ignore[operator]
    except SpecError as exc:
        assert exc.problems and all(p.location.line >= 1 for p in exc.problems), exc.render()
    assert time.perf_counter() - start < QUICK


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_loader_fuzz_yamlish_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(lambda: loader.loads(text, "fuzz.yaml"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_loader_fuzz_any_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(lambda: loader.loads(text, "fuzz.yaml"))
    _only_spec_errors(lambda: loader.loads(text, "fuzz.json"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_loader_fuzz_bytes_raise_only_spec_errors(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(data)
        _only_spec_errors(lambda: loader.load(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_check_fuzz_prefixed_specs_raise_only_spec_errors(text: str) -> None:
    """Text after a valid start goes through every pass up to resolve."""
    _only_spec_errors(lambda: nnspec.api.validate("nnspec: 1\nmodel:\n" + text, shapes=False))
