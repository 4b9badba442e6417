"""validate's verdict is the build's, and every command's.

For generated specs (tests/spec_strategies.py) and for mutations of them and of the shipped specs
(tests/fuzzing.py): whatever validate (shapes on) accepts builds and runs a real forward and
backward pass on the CPU with 2 samples (below a parameter cap: the meta device accepts what the
CPU refuses); compile, emit, summary and graph accept it too; ``--no-shapes`` never refuses what
shapes-on accepts; and nothing ends in an exception that is not nnspec's.
"""

from __future__ import annotations

import json
import random

from fuzzing import Generator, Mutator, Probe, parse, shipped_specs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.spec_strategies import specs

PROBE = Probe(max_params=200_000, limit_s=0)
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _assert_agree(file: str, text: str) -> None:
    outcome = PROBE(file, text)
    assert not outcome.defects, f"{outcome.defects}\n--- {file}\n{text}"


@SETTINGS
@given(specs())
def test_generated_specs_get_one_verdict_from_every_command(text: str) -> None:
    _assert_agree("generated.json", text)


@SETTINGS
@given(specs(), st.integers(0, 2**32 - 1), st.integers(1, 3))
def test_mutated_generated_specs_get_one_verdict_from_every_command(
        text: str, seed: int, count: int) -> None:
    mutator = Mutator([parse(text), *[parse(t) for _, t in shipped_specs()[:4]]])
    mutated = mutator.mutate(json.loads(text), random.Random(seed), count)
    _assert_agree("mutated.json", json.dumps(mutated, indent=1, default=str))


_SHIPPED = Generator(seed=1234)


@SETTINGS
@given(st.integers(0, 10**9))
def test_mutated_shipped_specs_get_one_verdict_from_every_command(index: int) -> None:
    case = _SHIPPED.case(index)
    _assert_agree(case.file, case.text)
