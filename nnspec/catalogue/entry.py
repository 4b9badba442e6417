"""The record every catalogue name is: its signature, and what the passes need to know about it.

An ``Entry`` holds the arguments (``Param``, with the part of the input shape that supplies an
inferred one) and ``Traits``: what a signature cannot say.  Every pass reads the traits instead
of naming a layer: the resolver (input counts, batch_first), the shape pass (``check`` then
``shape``), the builder and the emitter (``repeat_input``, an op's ``code``), the emit safety check
(``code.methods``) and the summary (``macs``).  Traits default to "a layer that torch runs on the
meta device", so a layer torch's signature describes fully needs no traits at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnspec.catalogue.macs import MacsRule
    from nnspec.catalogue.shape_rules import Check, ShapeRule
    from nnspec.catalogue.tensor_ops import OpCode


@dataclass(frozen=True)
class Param:
    name: str
    schema: Mapping[str, Any]
    required: bool
    default: Any = None
    inferred: str | None = None  # an INFERRED_ARGS rule, when the shape supplies it


@dataclass(frozen=True)
class Traits:
    """What a layer's or op's signature cannot say; every field has the plain layer's default."""

    inputs: tuple[int, int] = (1, 1)  # how many tensors forward takes: at least, at most
    repeat_input: int = 1  # one input stands for this many (MultiheadAttention: q = k = v)
    batch_first: bool = False  # reads the sequence first unless batch_first is set
    check: Check | None = None  # refuses an input torch would misread (a rank, the batch)
    shape: ShapeRule | None = None  # the output by a formula; None: torch runs it on meta
    # no parameters, and an __init__ that refuses nothing its shape rule lets through: where the
    # rule applies the shape pass does not build it (torchvision's import costs seconds)
    unbuilt: bool = False
    token_ids: bool = False  # takes integer ids (Embedding), so a float input gets that hint
    inferred: Mapping[str, str] = field(default_factory=dict)  # INFERRED_ARGS, for this layer
    minimums: Mapping[str, int] = field(default_factory=dict)  # MINIMUMS, for this layer
    bounds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # BOUNDS, for it
    spatial: int = 0  # its sizes per spatial dimension (SPATIAL_ARGS) are lists of this many
    # MACs of one sample from the module and its output shape (catalogue/macs.py); None: its
    # children's, or, without children, its weights once per sample (torchinfo's rule)
    macs: MacsRule | None = None
    mismatch_hint: Callable[[str, Any, tuple[int, ...]], str | None] | None = None
    code: OpCode | None = None  # ops: how they run, trace and are written as Python
    # MACs per sample from (kwargs, inputs, output), where the input shapes decide them: ops
    # that multiply (matmul, attention), and MultiheadAttention (keys of another length)
    count: Callable[[dict[str, Any], list[Any], Any], int] | None = None
    hint: str | None = None  # ops: what to do when torch refuses the inputs
    # what its backward pass reads back from its output, so that a layer run in place on that
    # output breaks the backward pass: "always" (ReLU, Sigmoid, Softmax, exp), "in place" (when
    # itself run in place: ELU, LeakyReLU), "" (it reads its input, or nothing)
    saves_output: str = ""
    view: bool = False  # its output shares its input's memory (Flatten, permute, getitem)


PLAIN = Traits()


@dataclass(frozen=True)
class Entry:
    """One named thing a spec may use: a layer, op, loss, optimizer, initializer, ..."""

    name: str
    kind: str
    doc: str
    params: Mapping[str, Param]
    traits: Traits = field(default=PLAIN)
    module: str = "torch.nn"  # layers: where the class lives (what emitted code imports)

    @property
    def required(self) -> list[str]:
        return [p.name for p in self.params.values() if p.required and not p.inferred]

    @property
    def min_inputs(self) -> int:
        return self.traits.inputs[0]

    @property
    def max_inputs(self) -> int:
        return self.traits.inputs[1]
