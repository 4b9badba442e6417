"""What torch's signatures cannot say about its layers: one ``Traits`` per layer that needs any.

A layer's arguments come from ``torch_api.json``; this table adds, for a layer name, how many
inputs it takes, which check and shape rule the shape pass applies (``shape_rules``), and the
few facts the builder, emitter and summary need.  A layer not listed here is run by torch on the
meta device and takes one input.  Adding a layer that needs a rule is adding one line here.
"""

from __future__ import annotations

from nnspec.catalogue import macs
from nnspec.catalogue import shape_rules as rules
from nnspec.catalogue.entry import Traits

# Arguments that follow from the incoming per-sample shape -> which part of it.
#   "channels": the first dimension of one sample (C of C,H,W or C,L)
#   "features": the last dimension of one sample
#   "features2": the last dimension of the second input (Bilinear)
INFERRED_ARGS: dict[str, str] = {
    "in_channels": "channels",
    "num_features": "channels",
    "num_channels": "channels",
    "input_channels": "channels",
    "in_features": "features",
    "in1_features": "features",
    "in2_features": "features2",
    "normalized_shape": "features",
    "embed_dim": "features",
    "d_model": "features",
    "input_size": "features",
}

# The least value torch accepts for an integer argument of this name (every layer that has one):
# the schema and the checker refuse less, so the shape rules never divide by zero and what
# validates builds.  Padding is >= 0 only where torch needs it (convolutions and pools:
# ConstantPad's negative padding crops), so those families state it themselves.
MINIMUMS: dict[str, int] = {
    "kernel_size": 1, "stride": 1, "dilation": 1, "groups": 1, "out_channels": 1,
    "out_features": 1, "num_embeddings": 1, "embedding_dim": 1, "hidden_size": 1,
    "num_heads": 1, "block_size": 1, "upscale_factor": 1, "downscale_factor": 1,
    "hidden_channels": 1,
}
_PADDED = {"padding": 0, "output_padding": 0}

# The fewest items torch accepts in a list argument of this name (every layer that has one):
# the schema refuses fewer where it is written, so torch's own IndexError never shows
# (torchvision's MLP indexes hidden_channels[-1]).
MIN_ITEMS: dict[str, int] = {"hidden_channels": 1}

# The range torch accepts for a number argument of this name (JSON Schema bounds), where torch
# refuses the rest only when the layer runs on the CPU (the meta device accepts ``eps: -0.5``
# that batch_norm refuses): the schema and the checker refuse it where it is written.  Layers
# whose argument of a shared name means another thing (PairwiseDistance's ``p`` is a norm's
# degree, a dropout's a probability) state theirs in Traits.bounds.
BOUNDS: dict[str, dict[str, float]] = {"eps": {"exclusiveMinimum": 0}}
_PROBABILITY = {"p": {"minimum": 0, "maximum": 1}}

# The arguments that give one size per spatial dimension: a list of them holds exactly as many
# as the layer's Traits.spatial (torch's max_pool2d refuses a kernel_size of [] or [2, 2, 2]
# that its annotation allows and the meta device accepts).
SPATIAL_ARGS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding",
                          "output_size"})

# The values torch accepts for a string argument of this name, where torch checks them only in
# the kernel (so the meta device accepts a typo the CPU refuses): the schema and the checker
# refuse anything else.
CHOICES: dict[str, tuple[str, ...]] = {"approximate": ("none", "tanh")}

_SAME = Traits(shape=rules.same_shape())
# backward reads the output (torch's derivatives): always, or when run in place
_SAVES = Traits(shape=rules.same_shape(), saves_output="always")
_SAVES_IN_PLACE = Traits(shape=rules.same_shape(), saves_output="in place")
_DROPOUT = Traits(shape=rules.same_shape(), bounds=_PROBABILITY)
_TWO = Traits(inputs=(2, 2))
_SEQUENCE = Traits(batch_first=True, check=rules.sequence_rank)


def _same(*ranks: int) -> Traits:
    return Traits(shape=rules.same_shape(ranks))


def _conv(dims: int, transposed: bool = False) -> Traits:
    return Traits(check=rules.conv_rank(dims), shape=rules.conv(dims, transposed=transposed),
                  minimums=_PADDED, spatial=dims, macs=macs.per_position)


def _pool(dims: int) -> Traits:
    return Traits(check=rules.spatial_rank(dims), shape=rules.pool(dims), minimums=_PADDED,
                  spatial=dims)


def _adaptive(dims: int) -> Traits:
    return Traits(check=rules.spatial_rank(dims), shape=rules.adaptive_pool(dims),
                  minimums={"output_size": 1}, spatial=dims)


LAYERS: dict[str, Traits] = {
    **dict.fromkeys(
        ("GELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LogSigmoid", "Mish",
         "PReLU", "ReLU6", "SiLU", "Softplus", "Softsign", "Tanhshrink", "Threshold"), _SAME),
    **dict.fromkeys(("ReLU", "Sigmoid", "Tanh"), _SAVES),
    **dict.fromkeys(("CELU", "ELU", "LeakyReLU", "RReLU", "SELU"), _SAVES_IN_PLACE),
    "Identity": Traits(shape=rules.same_shape(), view=True),
    **dict.fromkeys(("Dropout", "AlphaDropout", "FeatureAlphaDropout"), _DROPOUT),
    "Softshrink": Traits(shape=rules.same_shape(), bounds={"lambd": {"minimum": 0}}),
    # layers of the last dimension: their weights apply at every position of the others
    **dict.fromkeys(("LayerNorm", "RMSNorm"), Traits(shape=rules.same_shape(),
                                                     macs=macs.per_token)),
    "BatchNorm1d": _same(1, 2), "BatchNorm2d": _same(3), "BatchNorm3d": _same(4),
    "InstanceNorm1d": _same(2), "InstanceNorm2d": _same(3), "InstanceNorm3d": _same(4),
    **{f"Dropout{d}d": Traits(shape=rules.same_shape((d + 1,)), bounds=_PROBABILITY)
       for d in (1, 2, 3)},
    **{f"Conv{d}d": _conv(d) for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": _conv(d, transposed=True) for d in (1, 2, 3)},
    **{f"{kind}Pool{d}d": _pool(d) for kind in ("Max", "Avg") for d in (1, 2, 3)},
    **{f"Adaptive{kind}Pool{d}d": _adaptive(d) for kind in ("Max", "Avg") for d in (1, 2, 3)},
    "FractionalMaxPool2d": Traits(check=rules.spatial_rank(2)),
    "FractionalMaxPool3d": Traits(check=rules.spatial_rank(3)),
    "MaxUnpool1d": Traits(inputs=(2, 2), minimums=_PADDED),
    "MaxUnpool2d": Traits(inputs=(2, 2), minimums=_PADDED),
    "MaxUnpool3d": Traits(inputs=(2, 2), minimums=_PADDED),
    "LPPool1d": Traits(minimums=_PADDED), "LPPool2d": Traits(minimums=_PADDED),
    "LPPool3d": Traits(minimums=_PADDED),
    "Fold": Traits(check=rules.sample_rank(2), minimums=_PADDED),
    "Unfold": Traits(check=rules.sample_rank(3), minimums=_PADDED),
    "Conv2dNormActivation": Traits(minimums=_PADDED),
    "Conv3dNormActivation": Traits(minimums=_PADDED),
    "Linear": Traits(shape=rules.linear, mismatch_hint=rules.flatten_hint, macs=macs.per_token),
    "Flatten": Traits(shape=rules.flatten, view=True),
    "Unflatten": Traits(shape=rules.unflatten, view=True),
    "Bilinear": Traits(inputs=(2, 2), macs=macs.per_token), "CosineSimilarity": _TWO,
    "PairwiseDistance": _TWO,
    "RNN": _SEQUENCE, "LSTM": _SEQUENCE, "GRU": _SEQUENCE,
    # its LayerNorm on meta imports torch's Python references (seconds, once): a rule instead
    "TransformerEncoderLayer": Traits(batch_first=True, check=rules.sequence_rank,
                                      shape=rules.like_input),
    "TransformerDecoderLayer": Traits(inputs=(2, 2), batch_first=True, check=rules.sequence_rank,
                                      count=macs.decoder_layer_count),
    "Transformer": Traits(inputs=(2, 2), batch_first=True, check=rules.sequence_rank,
                          count=macs.transformer_count),
    # one input is self-attention (query = key = value); torchinfo counts no MACs for it (it
    # applies its weights functionally), the summary counts projections and products
    "MultiheadAttention": Traits(inputs=(1, 3), repeat_input=3, batch_first=True,
                                 check=rules.sequence_rank, macs=macs.self_attention,
                                 count=macs.attention_count, shape=rules.attention),
    **dict.fromkeys(("Softmax", "LogSoftmax", "Softmin"),
                    Traits(check=rules.explicit_dim, saves_output="always")),
    "Softmax2d": Traits(check=rules.sample_rank(3), saves_output="always"),
    "PixelShuffle": Traits(check=rules.sample_rank(3, at_least=True)),
    "PixelUnshuffle": Traits(check=rules.sample_rank(3, at_least=True)),
    "Embedding": Traits(token_ids=True, macs=macs.lookup, shape=rules.embedding),
    "EmbeddingBag": Traits(token_ids=True),
    # torchvision.ops
    "MLP": Traits(inferred={"in_channels": "features"}),  # Linear layers: the last dimension
    "SqueezeExcitation": Traits(macs=macs.pooled),  # its 1x1 convolutions see [C, 1, 1]
    "Permute": Traits(check=rules.permutation("dims"), shape=rules.permuted("dims"),
                      unbuilt=True),
    "StochasticDepth": Traits(shape=rules.dropped, unbuilt=True, bounds=_PROBABILITY),
    "DropBlock2d": Traits(bounds=_PROBABILITY), "DropBlock3d": Traits(bounds=_PROBABILITY),
}
