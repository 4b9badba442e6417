"""Words about catalogue entries for people: clean one-line docs, argument summaries, and
what each loss's inputs mean.  The JSON Schema's hovers, ``nnspec lsp`` and the learner's guide
read them from here, so an editor and the docs say the same thing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nnspec.catalogue import Entry, Param

_ROLE = re.compile(r":(?:math|class|func|meth|attr|mod|obj|ref|data|exc):`~?([^`]*)`")
_DOUBLE_TICKS = re.compile(r"``([^`]*)``")


def plain(doc: str) -> str:
    """torch's reST first paragraph as plain text: ``:math:`x_1``` -> ``x_1``,
    ``:class:`torch.nn.MSELoss``` -> ``MSELoss``, double backticks -> single."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if "." in m.group(1)
                     and " " not in m.group(1) else m.group(1), doc)
    text = _DOUBLE_TICKS.sub(r"`\1`", text)
    return re.sub(r"\s+", " ", text).strip()


def one_line(doc: str, limit: int = 160) -> str:
    """The first sentence of ``doc``, cleaned, at most ``limit`` characters."""
    text = plain(doc).rstrip(":")
    cut = re.search(r"(?<![.][a-z])(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    if cut:
        text = text[: cut.start() + 1]
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text if not text or text.endswith((".", "…", "?", "!")) else text + "."


def kind_of(schema: Any) -> str:
    """An argument's type in words: 'int or list of 2 ints', 'one of zeros, reflect'."""
    from nnspec.lang.schema import describe

    words = describe(dict(schema))
    return (words.replace("an integer", "int").replace("integers", "ints")
            .replace("a number", "float").replace("numbers", "floats")
            .replace("true or false", "bool").replace("a string", "str")
            .replace("a list of", "list of"))


def default_of(param: Param) -> str:
    if param.inferred:
        return "inferred from the input shape"
    if param.required:
        return "required"
    return f"default {json.dumps(param.default)}"


def param_line(entry: Entry, param: Param) -> str:
    """``kernel_size (int or list of 2 ints, required): ...`` for hovers and completions."""
    doc = getattr(param, "doc", "") or ""
    head = f"{param.name} ({kind_of(param.schema)}; {default_of(param)})"
    return f"{head}: {one_line(doc)}" if doc else f"{head}. An argument of {entry.name}."


# What each loss compares, argument by argument: (name, meaning) in torch's call order.
# ``loss.inputs`` says where each comes from; these are the defaults nnspec uses.
LOSS_INPUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "CrossEntropyLoss": (("input", "raw class scores (logits), (N, C)"),
                         ("target", "class indices in [0, C), (N,), or class probabilities")),
    "NLLLoss": (("input", "log-probabilities per class (after LogSoftmax), (N, C)"),
                ("target", "class indices in [0, C), (N,)")),
    "BCELoss": (("input", "probabilities in [0, 1] (after Sigmoid)"),
                ("target", "0 or 1 (or a probability), same shape as input")),
    "BCEWithLogitsLoss": (("input", "raw scores (logits); the sigmoid is inside the loss"),
                          ("target", "0 or 1 (or a probability), same shape as input")),
    "L1Loss": (("input", "predictions, any shape"),
               ("target", "true values, same shape; the loss is the mean |input - target|")),
    "MSELoss": (("input", "predictions, any shape"),
                ("target", "true values, same shape; the loss is the mean (input - target)^2")),
    "SmoothL1Loss": (("input", "predictions, any shape"),
                     ("target", "true values, same shape; squared below beta, L1 above")),
    "HuberLoss": (("input", "predictions, any shape"),
                  ("target", "true values, same shape; squared below delta, linear above")),
    "PoissonNLLLoss": (("input", "the log of the expected count (log_input: true), or the rate"),
                       ("target", "observed counts (non-negative), same shape")),
    "GaussianNLLLoss": (("input", "the predicted mean"), ("target", "true values"),
                        ("var", "the predicted variance (positive), one per sample or value")),
    "KLDivLoss": (("input", "log-probabilities (after LogSoftmax)"),
                  ("target", "probabilities (or log-probabilities with log_target: true)")),
    "MarginRankingLoss": (("input1", "score of the first item of a pair"),
                          ("input2", "score of the second item"),
                          ("target", "1 when input1 should rank higher, -1 when input2")),
    "HingeEmbeddingLoss": (("input", "a distance between two samples, (N,)"),
                           ("target", "1 for a similar pair, -1 for a dissimilar one")),
    "CosineEmbeddingLoss": (("input1", "first embedding, (N, D)"),
                            ("input2", "second embedding, (N, D)"),
                            ("target", "1 for similar pairs (pull together), -1 for dissimilar")),
    "SoftMarginLoss": (("input", "raw scores"), ("target", "1 or -1, same shape")),
    "MultiMarginLoss": (("input", "raw class scores, (N, C)"),
                        ("target", "one class index in [0, C) per sample, (N,)")),
    "MultiLabelMarginLoss": (("input", "raw class scores, (N, C)"),
                             ("target", "the sample's class indices, padded with -1, (N, C)")),
    "MultiLabelSoftMarginLoss": (("input", "raw class scores, (N, C)"),
                                 ("target", "0 or 1 per class (several may be 1), (N, C)")),
    "TripletMarginLoss": (("anchor", "embedding of a sample"),
                          ("positive", "embedding of a sample of the same kind"),
                          ("negative", "embedding of a sample of another kind")),
    "TripletMarginWithDistanceLoss": (("anchor", "embedding of a sample"),
                                      ("positive", "embedding of a sample of the same kind"),
                                      ("negative", "embedding of a sample of another kind")),
    "CTCLoss": (("log_probs", "log-probabilities per time step, (T, N, C); class `blank` "
                              "(default 0) means no symbol"),
                ("targets", "the label sequences, padded, (N, S)"),
                ("input_lengths", "time steps used per sample, (N,)"),
                ("target_lengths", "length of each label sequence, (N,)")),
}


def loss_inputs_line(name: str) -> str:
    """'Inputs: input = raw class scores ...; target = ...' (empty for an unknown loss)."""
    parts = LOSS_INPUTS.get(name, ())
    return "Inputs: " + "; ".join(f"{a} = {m}" for a, m in parts) + "." if parts else ""


def entry_line(entry: Entry) -> str:
    """An entry's one-line description, and for a loss what its inputs are."""
    doc = one_line(entry.doc)
    if entry.kind == "loss":
        return f"{doc} {loss_inputs_line(entry.name)}".strip()
    return doc
