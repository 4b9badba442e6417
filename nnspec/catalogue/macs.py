"""Multiply-accumulates (MACs) of one sample, one rule per kind of layer (``Traits.macs``).

A rule takes the layer's module (built on the meta device: only shapes) and the shape of one
sample of its output, and returns the MACs of one sample.  A layer's weights count once for
every position they are applied at, so the count is an operation count wherever a layer
multiplies by its weights:

* ``per_position``: a convolution applies its weight (and bias) at every output position, the
  channels excepted (torchinfo's rule, and torch.utils.flop_counter's, bias aside);
* ``per_token``: a layer of the last dimension (``Linear``, ``LayerNorm``, ``RMSNorm``,
  ``Bilinear``) applies it at every position of the other dimensions, so a ``Linear`` on a
  ``[197, 768]`` sequence counts 197 times (torchinfo counts it once);
* ``once`` (a layer without a rule): weights once per sample, recurrent weights
  (``weight_ih_l0``) once per step (torchinfo's rule: batch norm counts 2C, not 2CHW);
* ``pooled``: squeeze-and-excitation's layers see one value per channel: every weight once;
* ``lookup``: an ``Embedding`` gathers rows and multiplies nothing: zero;
* ``self_attention``: ``MultiheadAttention``'s projections per token and its two matrix
  products, ``L * S * (E + Ev)`` (what flop_counter counts for them).

Ops that multiply tensors count from their input shapes (``Traits.count``); so does a layer
whose count needs them, given its arguments with the catalogue's defaults:
``MultiheadAttention`` (cross-attention reads keys of another length),
``TransformerDecoderLayer`` and ``Transformer`` (their memory or source has its own length).
Biases and norms count as torchinfo counts them, which torch.utils.flop_counter (FLOPs / 2,
the oracle for attention networks) does not: the two differ by those additions, a fraction of
a percent for a transformer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import Any

MacsRule = Callable[[Any, tuple[int, ...]], int]


def _weights(module: Any) -> list[tuple[str, int]]:
    return [(name, p.numel()) for name, p in module.named_parameters(recurse=False)]


def once(module: Any, out: tuple[int, ...]) -> int:
    """Weights and biases once per sample; other weights (recurrent) once per step."""
    steps = out[0] if out else 1
    return sum(count if name in ("weight", "bias") else count * steps
               for name, count in _weights(module) if "weight" in name or "bias" in name)


def per_position(module: Any, out: tuple[int, ...]) -> int:
    """A convolution: weights and bias at every output position (the channels excepted)."""
    return sum(count for name, count in _weights(module)
               if name in ("weight", "bias")) * prod(out[1:])


def per_token(module: Any, out: tuple[int, ...]) -> int:
    """A layer of the last dimension: weights and bias at every position of the others."""
    return sum(count for name, count in _weights(module)
               if name in ("weight", "bias")) * prod(out[:-1])


def pooled(module: Any, out: tuple[int, ...]) -> int:
    """Layers applied to the input pooled to one value per channel (squeeze-and-excitation's
    1x1 convolutions): every weight once, whatever the output's size."""
    return sum(p.numel() for p in module.parameters())


def lookup(module: Any, out: tuple[int, ...]) -> int:
    """Rows gathered from a table: no multiplication."""
    return 0


def attention_macs(embed: int, kdim: int, vdim: int, bias: bool, length: int, source: int,
                   extra: int = 0) -> int:
    """Multi-head attention of ``length`` queries over ``source`` keys and values: the q, k,
    v projections at their tokens, ``q @ k^T`` and ``weights @ v`` (``length * embed`` per key
    each, over all heads; ``extra`` keys are appended after the projection: ``add_bias_kv``,
    ``add_zero_attn``), and the output projection."""
    projections = length * embed * embed + source * embed * (kdim + vdim)
    biases = (2 * length + 2 * source) * embed if bias else 0
    products = 2 * length * (source + extra) * embed
    return projections + biases + products + length * embed * embed


def self_attention(module: Any, out: tuple[int, ...]) -> int:
    """A ``MultiheadAttention`` module seen alone (inside a Transformer layer): self-attention
    over the tokens of its output."""
    tokens = prod(out[:-1])
    extra = int(module.bias_k is not None) + int(module.add_zero_attn)
    return attention_macs(module.embed_dim, module.kdim, module.vdim,
                          module.in_proj_bias is not None, tokens, tokens, extra)


def attention_count(kwargs: dict[str, Any], inputs: Sequence[Any], out: Any) -> int:
    """A ``MultiheadAttention`` node: queries from the first input, keys and values from the
    second (one input: self-attention)."""
    query = inputs[0].shape
    key = inputs[1].shape if len(inputs) > 1 else query
    embed = query[-1]
    extra = int(bool(kwargs["add_bias_kv"])) + int(bool(kwargs["add_zero_attn"]))
    return attention_macs(embed, kwargs["kdim"] or embed, kwargs["vdim"] or embed,
                          kwargs["bias"], prod(query[:-1]), prod(key[:-1]), extra)


def _norm(embed: int, bias: bool, tokens: int) -> int:
    return tokens * embed * (2 if bias else 1)


def _feed_forward(embed: int, hidden: int, bias: bool, tokens: int) -> int:
    return tokens * (2 * embed * hidden + ((hidden + embed) if bias else 0))


def _encoder_layer(embed: int, hidden: int, bias: bool, tokens: int) -> int:
    return (attention_macs(embed, embed, embed, bias, tokens, tokens)
            + _feed_forward(embed, hidden, bias, tokens) + 2 * _norm(embed, bias, tokens))


def _decoder_layer(embed: int, hidden: int, bias: bool, tokens: int, memory: int) -> int:
    return (attention_macs(embed, embed, embed, bias, tokens, tokens)
            + attention_macs(embed, embed, embed, bias, tokens, memory)
            + _feed_forward(embed, hidden, bias, tokens) + 3 * _norm(embed, bias, tokens))


def decoder_layer_count(kwargs: dict[str, Any], inputs: Sequence[Any], out: Any) -> int:
    """A ``TransformerDecoderLayer`` node: self-attention over the target's tokens, attention
    from them to the memory's (its second input), the feed-forward layers and three norms."""
    return _decoder_layer(inputs[0].shape[-1], kwargs["dim_feedforward"], kwargs["bias"],
                          prod(inputs[0].shape[:-1]), prod(inputs[1].shape[:-1]))


def transformer_count(kwargs: dict[str, Any], inputs: Sequence[Any], out: Any) -> int:
    """A ``Transformer`` node: encoder layers over the source's tokens (its first input),
    decoder layers over the target's (its second), and the two final norms."""
    embed, hidden, bias = inputs[0].shape[-1], kwargs["dim_feedforward"], kwargs["bias"]
    source, target = prod(inputs[0].shape[:-1]), prod(inputs[1].shape[:-1])
    return (kwargs["num_encoder_layers"] * _encoder_layer(embed, hidden, bias, source)
            + kwargs["num_decoder_layers"] * _decoder_layer(embed, hidden, bias, target, source)
            + _norm(embed, bias, source) + _norm(embed, bias, target))
