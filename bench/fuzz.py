"""The long fuzz campaign: mutated specs through every command, in-process, seeded.

    nice -n 19 .venv/bin/python bench/fuzz.py --cases 100000 --minutes 60 --out fuzz-out
    .venv/bin/python bench/fuzz.py --seed 0 --case 1234 --show      # replay one case

Cases come from tests/fuzzing.py (targeted, mild, structural and byte-level mutations of specs/
and examples/).  The parent imports torch and nnspec and warms them up once, then forks one
child per batch of cases (``--batch``; ``--jobs`` children at a time): each child starts warm
and leaves nothing behind, and a child that dies (a segfault, the OOM killer) loses one batch,
which is reported, not the campaign.  Prints where the cases stopped (load, check, resolve,
shapes, build, ok), every distinct defect (crash, disagreement between commands, raw message,
slow case) with the first case that found it, and the time figures; with --out, each distinct
defect is saved there as a minimal spec.  Exit status 1 if any defect was found.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fuzzing  # noqa: E402

HOSTILE = ("!!python", "!Custom", "&a", "*a", "9999999999", "1e400", "${10 ** 400}")


def work(seed: int, indices: range, limit_s: float, deadline: float) -> dict[str, Any]:
    """Run the cases ``indices`` (until the deadline, a time.time()); return counts and the
    first case per defect."""
    gen = fuzzing.Generator(seed)
    probe = fuzzing.Probe(limit_s=limit_s)
    stages: Counter[str] = Counter()
    hows: Counter[str] = Counter()
    defects: dict[tuple[str, str], dict[str, Any]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    times: list[float] = []  # wall-clock seconds per case
    cpu: list[float] = []  # CPU seconds per case: what the slow verdict judges
    hostile_max = 0.0
    done = built = 0
    for index in indices:
        if time.time() > deadline:
            break
        done += 1
        case = gen.case(index)
        outcome = probe(case.file, case.text)
        stages[outcome.stage] += 1
        hows[case.how] += 1
        built += outcome.built
        times.append(outcome.seconds)
        cpu.append(outcome.cpu_seconds)
        if any(token in case.text for token in HOSTILE):
            hostile_max = max(hostile_max, outcome.cpu_seconds)
        for kind, key, detail in outcome.defects:
            counts[(kind, key)] += 1
            defects.setdefault((kind, key), {"case": index, "source": case.source,
                                             "how": case.how, "detail": detail})
    return {"stages": stages, "hows": hows, "defects": defects, "counts": counts,
            "times": times, "cpu": cpu, "hostile_max": hostile_max, "done": done,
            "built": built}


def warm_up(seed: int) -> None:
    """Import torch and nnspec and run each shipped spec once, with no alarm (one must not stop
    an import half-way): the forked children inherit all of it."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    warm = fuzzing.Probe(limit_s=0)
    for name, text in fuzzing.Generator(seed).specs:
        warm(name, text)


def _child(conn: Any, seed: int, indices: range, limit_s: float, deadline: float) -> None:
    conn.send(work(seed, indices, limit_s, deadline))
    conn.close()


def campaign(seed: int, cases: int, jobs: int, batch: int, limit_s: float,
             deadline: float) -> list[dict[str, Any]]:
    """Every batch of cases in a forked child, ``jobs`` at a time; a child that dies without
    an answer is one ``crash`` defect naming its batch."""
    ctx = multiprocessing.get_context("fork")
    pending = [range(start, min(start + batch, cases)) for start in range(0, cases, batch)]
    running: dict[Any, tuple[Any, range]] = {}
    parts: list[dict[str, Any]] = []
    while pending or running:
        while pending and len(running) < jobs and time.time() < deadline:
            indices = pending.pop(0)
            here, there = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_child, args=(there, seed, indices, limit_s, deadline))
            child.start()
            there.close()
            running[here] = (child, indices)
        if not running:
            break
        for conn in multiprocessing.connection.wait(list(running)):
            child, indices = running.pop(conn)  # type: ignore[index]
            try:
                parts.append(conn.recv())  # type: ignore[union-attr]
            except EOFError:
                parts.append(_died(indices, child))
            child.join()
    return parts


def _died(indices: range, child: Any) -> dict[str, Any]:
    child.join()
    key = ("crash", f"worker died (exit {child.exitcode})")
    return {"stages": Counter(), "hows": Counter(), "counts": Counter({key: 1}), "times": [],
            "cpu": [],
            "defects": {key: {"case": indices.start, "source": "?", "how": "?",
                              "detail": f"cases {indices.start}..{indices.stop - 1}: rerun "
                                        "them one by one with --case"}},
            "hostile_max": 0.0, "done": 0, "built": 0}


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"stages": Counter(), "hows": Counter(), "defects": {},
                             "counts": Counter(), "times": [], "cpu": [], "hostile_max": 0.0,
                             "done": sum(p["done"] for p in parts),
                             "built": sum(p["built"] for p in parts)}
    for part in parts:
        total["stages"].update(part["stages"])
        total["hows"].update(part["hows"])
        total["counts"].update(part["counts"])
        total["times"].extend(part["times"])
        total["cpu"].extend(part["cpu"])
        total["hostile_max"] = max(total["hostile_max"], part["hostile_max"])
        for key, first in part["defects"].items():
            if key not in total["defects"] or first["case"] < total["defects"][key]["case"]:
                total["defects"][key] = first
    return total


def report(total: dict[str, Any], cases: int, seconds: float, seed: int,
           limit_s: float = 5.0) -> str:
    stages = total["stages"]
    reached = sum(stages[s] for s in ("shapes", "build", "ok"))
    lines = [f"{cases:,} cases (seed {seed}) in {seconds:.0f} s, {cases / max(seconds, 1e-9):.1f}"
             " cases/s: " + ", ".join(f"{k} {v:,}" for k, v in sorted(total["hows"].items()))]
    lines.append("stopped at: " + ", ".join(f"{s} {stages[s]:,}" for s in fuzzing.STAGES))
    lines.append(f"reached shape inference: {reached:,} ({100 * reached / max(cases, 1):.1f}%); "
                 f"built and run forward and backward on the CPU: {total['built']:,}")
    times, cpu = sorted(total["times"]) or [0.0], sorted(total["cpu"]) or [0.0]
    lines.append(f"time per case, CPU (wall): median {1000 * cpu[len(cpu) // 2]:.1f} ms "
                 f"({1000 * times[len(times) // 2]:.1f}), max {cpu[-1]:.2f} s ({times[-1]:.2f}); "
                 f"over {limit_s:g} s: {sum(t > limit_s for t in cpu)} "
                 f"({sum(t > limit_s for t in times)}); "
                 f"hostile-token cases max {total['hostile_max']:.2f} s CPU")
    kinds = Counter(kind for kind, _ in total["counts"].elements())
    lines.append(f"defects: {sum(total['counts'].values()):,} cases, "
                 f"{len(total['defects'])} distinct; by kind: "
                 + (", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())) or "none"))
    tracebacks = sum(n for (kind, _), n in total["counts"].items() if kind == "crash")
    lines.append(f"tracebacks: {tracebacks}")
    for (kind, key), first in sorted(total["defects"].items()):
        lines.append(f"  [{kind}] {key}  x{total['counts'][(kind, key)]}  (case {first['case']}, "
                     f"{first['how']} of {first['source']}): {first['detail'][:160]}")
    return "\n".join(lines)


def save_minimal(total: dict[str, Any], seed: int, out: Path, limit_s: float) -> None:
    """Each distinct defect as a minimal spec, named after its kind and key."""
    out.mkdir(parents=True, exist_ok=True)
    gen = fuzzing.Generator(seed)
    probe = fuzzing.Probe(limit_s=limit_s)
    for n, ((kind, key), first) in enumerate(sorted(total["defects"].items())):
        case = gen.case(first["case"])

        def still(file: str, text: str, kind: str = kind, key: str = key) -> bool:
            return any(d[:2] == (kind, key) for d in probe(file, text).defects)

        file, text = fuzzing.minimise(case.file, case.text, still)
        suffix = Path(file).suffix
        path = out / f"{n:03d}-{kind}{suffix}"
        path.write_text(f"# {kind}: {key} (seed {seed}, case {first['case']})\n" + text
                        if suffix == ".yaml" else text)
        (out / f"{n:03d}-{kind}.txt").write_text(f"{kind}: {key}\nseed {seed} case "
                                                 f"{first['case']}\n{first['detail']}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="children at a time")
    parser.add_argument("--batch", type=int, default=500, help="cases per forked child")
    parser.add_argument("--limit-s", type=float, default=5.0,
                        help="CPU time limit of one case (wall: six times this)")
    parser.add_argument("--minutes", type=float, default=0,
                        help="stop after this long and report the cases done (0: no limit)")
    parser.add_argument("--out", type=Path, help="save each distinct defect here, minimised")
    parser.add_argument("--case", type=int, help="replay this one case")
    parser.add_argument("--show", action="store_true", help="with --case: print the spec")
    args = parser.parse_args()
    if args.case is not None:
        case = fuzzing.Generator(args.seed).case(args.case)
        if args.show:
            print(f"--- {case.file} ({case.how} of {case.source})\n{case.text}\n---")
        warm_up(args.seed)  # as in the campaign: torch's first imports are not the case's time
        outcome = fuzzing.Probe(limit_s=args.limit_s)(case.file, case.text)
        print(f"stage {outcome.stage}, {outcome.cpu_seconds:.3f} s CPU, "
              f"{outcome.seconds:.3f} s wall")
        for defect in outcome.defects:
            print("  ", *defect)
        return 1 if outcome.defects else 0
    deadline = time.time() + args.minutes * 60 if args.minutes else float("inf")
    warm_up(args.seed)
    start = time.perf_counter()  # the cases' time: the warm-up is paid once per campaign
    parts = campaign(args.seed, args.cases, args.jobs, args.batch, args.limit_s, deadline)
    total = merge(parts)
    print(report(total, total["done"], time.perf_counter() - start, args.seed, args.limit_s))
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = used.ru_utime + used.ru_stime
    print(f"CPU time of the children: {cpu:.0f} s, {1000 * cpu / max(total['done'], 1):.1f} ms "
          f"per case; load average at the end {os.getloadavg()[0]:.1f}")
    if args.out and total["defects"]:
        save_minimal(total, args.seed, args.out, args.limit_s)
        print(f"minimal specs in {args.out}")
    return 1 if total["defects"] else 0


if __name__ == "__main__":
    sys.exit(main())
