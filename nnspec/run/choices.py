"""What ``auto`` means for precision, memory format and compilation: one pure function.

``choose`` takes the spec's train section and a few facts about the run (device, model size,
planned steps, what the device supports) and returns each setting with who chose it and why, so
the decision can be unit-tested for a CUDA machine on a CPU one.  The rules:

- The CPU and MPS: auto changes nothing a run computes: precision 32, contiguous memory, no
  torch.compile (measured on a 2-core CPU: 0.64x eager for LeNet-5 and 0.93x for ResNet-18, after
  a first compile of 32-50 s).
- CUDA: a model of a million parameters or more is compute-bound; it trains in bf16-mixed (where
  the device has bfloat16), in channels_last when it convolves images in half precision (tensor
  cores read that layout), and compiled when the run is long enough (500 steps) to pay for the
  compile.  A smaller model is bound by kernel launches: it stays in float32 and uncompiled, and
  ``train.cuda_graph: auto`` replays its whole step as one CUDA graph instead.

A value the spec sets is kept.  ``graphed.decide`` makes the CUDA-graph choice from these.
Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LARGE_MODEL = 1_000_000  # parameters: at or above, a step is bound by arithmetic, not launches
COMPILE_MIN_STEPS = 500  # a first compile (tens of seconds) needs this many steps to pay back
HALF = ("bf16-mixed", "16-mixed")


@dataclass(frozen=True)
class Facts:
    """What the choice depends on besides the spec."""

    device: str  # cpu, cuda, mps
    parameters: int
    steps: int  # optimizer steps planned for the whole run (0: no training)
    images: bool  # the model convolves 4-D (N, C, H, W) inputs
    bf16: bool = False  # the device runs bfloat16 autocast
    compiler: bool = False  # torch.compile has a backend for the device (triton on CUDA)


@dataclass(frozen=True)
class Choice:
    value: Any
    auto: bool  # chosen by nnspec (the spec said auto)
    why: str

    def shown(self, text: str) -> str:
        """``text`` as the run's first line shows it: marked when nnspec chose it."""
        return f"{text} (auto)" if self.auto else text


@dataclass(frozen=True)
class Choices:
    precision: Choice  # "32", "bf16-mixed", "16-mixed"
    memory_format: Choice  # "contiguous", "channels_last"
    compile: Choice  # bool

    def record(self) -> dict[str, Any]:
        """For resolved.json: each setting's value, whether auto chose it, and why."""
        return {name: {"value": c.value, "auto": c.auto, "why": c.why}
                for name, c in (("precision", self.precision),
                                ("memory_format", self.memory_format),
                                ("compile", self.compile))}


def choose(train: Any, facts: Facts) -> Choices:
    """Each auto setting of ``train`` (a spec's Train section) decided for ``facts``."""
    precision = _precision(train.precision, facts)
    fsdp = getattr(train, "strategy", "auto") == "fsdp"
    return Choices(precision, _memory_format(train.memory_format, facts, precision.value),
                   _compile(train.compile, facts, fsdp))


def cautions(choices: Choices, device: str) -> list[str]:
    """Warnings for settings the spec chose that will run, but badly, on ``device`` (auto never
    makes such a choice)."""
    if device == "cpu" and choices.precision.value == "16-mixed":
        return ["precision 16-mixed on the CPU: float16 autocast is legal there but many times "
                "slower than 32 (the CPU has no float16 arithmetic); use train.precision="
                "bf16-mixed, the CPU's half precision, or 32"]
    return []


def _precision(setting: Any, facts: Facts) -> Choice:
    if setting != "auto":
        return Choice(str(setting), False, "set in the spec")
    if facts.device != "cuda":
        return Choice("32", True, f"{facts.device}: auto never changes what a run computes")
    if facts.parameters < LARGE_MODEL:
        return Choice("32", True, f"{facts.parameters:,} parameters: launch-bound, half "
                      "precision would not pay")
    if not facts.bf16:
        return Choice("32", True, "this CUDA device has no bfloat16")
    return Choice("bf16-mixed", True, f"{facts.parameters:,} parameters on a device with "
                  "bfloat16")


def _memory_format(setting: str, facts: Facts, precision: str) -> Choice:
    if setting != "auto":
        return Choice(setting, False, "set in the spec")
    if facts.device != "cuda":
        return Choice("contiguous", True, f"{facts.device}: auto never changes what a run "
                      "computes")
    if not facts.images:
        return Choice("contiguous", True, "the model does not convolve images")
    if precision not in HALF:
        return Choice("contiguous", True, "float32: channels_last pays with tensor cores in "
                      "half precision")
    return Choice("channels_last", True, f"convolutions on images in {precision}")


def _compile(setting: Any, facts: Facts, fsdp: bool = False) -> Choice:
    if setting != "auto":
        return Choice(bool(setting), False, "set in the spec")
    if fsdp:
        return Choice(False, True, "train.strategy fsdp does not compile yet")
    if facts.device != "cuda":
        return Choice(False, True, f"never compiled on {facts.device} (slower than eager on a "
                      "CPU, after tens of seconds of compiling)")
    if not facts.compiler:
        return Choice(False, True, "torch.compile has no backend here (triton is missing)")
    if facts.parameters < LARGE_MODEL:
        return Choice(False, True, f"{facts.parameters:,} parameters: launch-bound, a CUDA "
                      "graph pays more")
    if facts.steps < COMPILE_MIN_STEPS:
        return Choice(False, True, f"{facts.steps} steps planned: too few to pay for "
                      "compiling")
    return Choice(True, True, f"{facts.parameters:,} parameters, {facts.steps:,} steps")
