"""A bounded slice of the fuzz campaign (bench/fuzz.py runs the long one): mutated specs through
every command, in this process; none may end in a traceback, and the commands must agree."""

from __future__ import annotations

import pytest
from fuzzing import Generator, Probe, parse, shipped_specs, to_yaml

CASES = 240
SEED = 10  # the campaign's seeds start at 0; CI looks at other cases each time the seed moves


@pytest.fixture(scope="module")
def outcomes() -> list[tuple[int, object]]:
    gen, probe = Generator(SEED), Probe(limit_s=20.0)  # CI machines are slow: only hangs fail
    for name, text in gen.specs:  # warm-up (no alarm: it must not stop an import half-way)
        Probe(limit_s=0)(name, text)
    return [(i, probe(gen.case(i).file, gen.case(i).text)) for i in range(CASES)]


def test_no_mutated_spec_ends_in_a_traceback_or_a_disagreement(outcomes) -> None:
    found = [(i, d) for i, o in outcomes for d in o.defects if d[0] != "slow"]  # type: ignore
    assert not found, "\n".join(f"case {i} (bench/fuzz.py --seed {SEED} --case {i} --show): "
                                f"{d}" for i, d in found[:10])


def test_at_least_30_percent_of_the_cases_reach_shape_inference(outcomes) -> None:
    reached = sum(o.stage in ("shapes", "build", "ok") for _, o in outcomes)  # type: ignore
    assert reached >= 0.3 * len(outcomes)


def test_a_case_is_a_pure_function_of_its_seed_and_index() -> None:
    a, b = Generator(3).case(17), Generator(3).case(17)
    assert (a.file, a.text) == (b.file, b.text)
    assert Generator(3).case(18).text != a.text or Generator(4).case(17).text != a.text


@pytest.mark.parametrize("style", ["block", "flow", "mixed"])
def test_the_fuzzers_yaml_writer_round_trips_every_shipped_spec(style: str) -> None:
    for name, text in shipped_specs():
        data = parse(text)
        assert parse(to_yaml(data, style) + "\n") == data, name


def test_targeted_mutations_keep_most_specs_past_the_checker() -> None:
    """One catalogue-driven fault each: most cases reach shape inference (the campaign's
    reach comes from them)."""
    gen = Generator(SEED)
    cases = [c for c in (gen.case(i) for i in range(200)) if c.how == "targeted"]
    assert len(cases) > 50
    probe = Probe(limit_s=0, run_forward=False)
    reached = [probe(c.file, c.text).stage in ("shapes", "build", "ok") for c in cases[:40]]
    assert sum(reached) >= 0.6 * len(reached)


def test_the_slow_verdict_counts_the_cases_cpu_time_not_the_machines_load() -> None:
    """A case that waits (as one does on a loaded machine) is not slow until six times the
    limit of wall time; one that computes is slow at the limit of CPU time."""
    import time

    from fuzzing import Slow, time_limit

    with time_limit(0.1):
        time.sleep(0.3)  # wall time past the limit, hardly any CPU: not slow
    with pytest.raises(Slow, match="CPU"), time_limit(0.1):
        while True:
            pass
    with pytest.raises(Slow, match="wall"), time_limit(0.05, wall_factor=2):
        time.sleep(1)
