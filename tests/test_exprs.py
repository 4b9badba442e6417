"""nnspec's own expression evaluator: what ``${...}`` may compute, and what it refuses."""

from __future__ import annotations

import ast
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnspec.lang.exprs import LIMIT, MAX_DEPTH, MAX_LENGTH, ExprError, evaluate, is_expr, substitute

NAMES = {"width": 16, "depth": 3, "rate": 0.5, "act": "relu", "big": True}


@pytest.mark.parametrize(("text", "value"), [
    ("$width", 16),
    ("${width * 2}", 32),
    ("${width // 3}", 5),
    ("${width / 4}", 4.0),
    ("${width % 5}", 1),
    ("${2 ** depth}", 8),
    ("${-width + 1}", -15),
    ("${(width + 1) * 2}", 34),
    ("${min(width, 8)}", 8),
    ("${max(1, depth, 2)}", 3),
    ("${abs(-3)}", 3),
    ("${int(rate * 10)}", 5),
    ("${round(2.6)}", 3),
    ("${float(depth)}", 3.0),
    ("${width if big else 1}", 16),
    ("${1 < depth <= 3}", True),
    ("${act == 'relu'}", True),
    ("${ width }", 16),
    ("${depth > 0 or true}", True),  # YAML's true and false, beside Python's
    ("${big and false}", False),
    ("${True if false else 2}", 2),
], ids=lambda v: v if isinstance(v, str) else None)
def test_allowed_arithmetic_evaluates_like_python(text: str, value: object) -> None:
    result = evaluate(text, NAMES)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(("text", "message"), [
    ("${10**10**10}", "too large"),
    ("${9**9**9}", "too large"),
    ("${2**62 * 2**62}", "out of range"),
    ("${1e308 * 10}", "out of range"),
    ("${__import__('os')}", "call '__import__('os')' is not allowed"),
    ("${open('/etc/passwd')}", "is not allowed"),
    ("${width.__class__}", "is not allowed in an expression"),
    ("${(lambda: 1)()}", "is not allowed"),
    ("${[x for x in (1, 2)]}", "is not allowed in an expression"),
    ("${'a' * 100000000}", "is not a number"),
    ("${width & 1}", "is not allowed"),
    ("${input.__class__}", "is not allowed in an expression"),
    ("${width << 40}", "is not allowed"),
    ("${min(*[1, 2])}", "is not allowed"),
    ("${max(key=abs)}", "is not allowed"),
    ("${unknown + 1}", "unknown variable 'unknown'"),
    ("${widht}", "did you mean"),
    ("${1 / 0}", "division by zero"),
    ("${0 ** -1}", "division by zero"),
    ("${(-8) ** 0.5}", "not a real number"),
    ("${1 < 'a'}", "cannot compare"),
    ("${min()}", "min expected at least 1 argument"),
    ("${width *}", "cannot parse"),
    ("${1\x00}", "cannot parse"),
    ("${" + "-" * 100 + "1}", f"nested deeper than {MAX_DEPTH}"),
    ("${" + "(" * 300 + "1" + ")" * 300 + "}", "over the limit"),
    ("${" + "-" * 100_000 + "1}", f"over the limit of {MAX_LENGTH}"),
    ("${" + "not " * 5000 + "1}", "over the limit"),
], ids=lambda v: v[:30] if isinstance(v, str) else None)
def test_refused_expression_is_an_expr_error_with_a_reason(text: str, message: str) -> None:
    assert is_expr(text)
    with pytest.raises(ExprError) as info:
        evaluate(text, NAMES)
    assert message in str(info.value) + str(info.value.hint)


def test_expression_with_braces_is_not_an_expression_but_text() -> None:
    assert not is_expr("${{1: 2}[1]}")
    assert substitute("${{1: 2}[1]}", NAMES) == "${{1: 2}[1]}"


def test_substitute_reaches_into_lists_and_mappings() -> None:
    value = {"kernel": ["$depth", "${depth * 2}"], "name": "plain", "n": 1}
    assert substitute(value, NAMES) == {"kernel": [3, 6], "name": "plain", "n": 1}


def test_dollar_text_that_is_not_an_expression_stays_text() -> None:
    for text in ("$", "$1abc", "cost: $5", "${}", "$ width"):
        assert substitute(text, NAMES) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_in_an_expression_gives_a_value_or_an_expr_error(body: str) -> None:
    text = "${" + body + "}"
    if not is_expr(text):
        return
    try:
        result = evaluate(text, NAMES)
    except ExprError:
        return
    assert isinstance(result, bool | int | float | str)
    if isinstance(result, int | float) and not isinstance(result, bool):
        assert math.isfinite(result) and abs(result) < LIMIT


# no ** here: Python itself would hang on (50 ** (50 ** 50)); powers are tested above
OPS = st.sampled_from(["+", "-", "*", "//", "%", "/"])
LEAVES = st.one_of(st.integers(-50, 50).map(str), st.sampled_from(["width", "depth"]))


@st.composite
def arithmetic(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(LEAVES)
    return f"({draw(arithmetic(depth + 1))} {draw(OPS)} {draw(arithmetic(depth + 1))})"


@settings(max_examples=300, deadline=None)
@given(arithmetic())
def test_arithmetic_agrees_with_python_wherever_python_stays_in_range(body: str) -> None:
    """The oracle is Python itself, on the same text with the same names."""
    try:
        expected = eval(compile(ast.parse(body, mode="eval"), "<oracle>", "eval"),
                        {"__builtins__": {}}, dict(NAMES))
    except (ZeroDivisionError, OverflowError):
        expected = None
    try:
        result = evaluate("${" + body + "}", NAMES)
    except ExprError:
        assert expected is None or abs(expected) >= LIMIT  # division by zero, or out of range
        return
    assert result == expected


@pytest.mark.parametrize(("name", "said"), [
    ("index", "known only in an item with repeat:"), ("input", "not in vars")])
def test_a_name_format_2_defines_elsewhere_says_where(name: str, said: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(f"${{{name}}}", {"width": 1})
    assert said in (info.value.hint or "")
