"""Command-line overrides (KEY=VALUE): where they land, how they are typed, where errors point."""

from __future__ import annotations

from typing import Any

import pytest

from nnspec.api import load_spec, validate
from nnspec.errors import SpecError

BASE = """\
nnspec: 1
input: [4]
model:
  - Linear: {out_features: 3}
data: {dataset: {MNIST: {root: data}}}
loss: CrossEntropyLoss
optimizer: {SGD: {lr: 0.1}}
train: {epochs: 2}
"""


def _value(spec: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        spec = spec[part] if isinstance(spec, dict) else getattr(spec, part)
    return spec


@pytest.mark.parametrize(("override", "where", "expected"), [
    ("train.epochs=3", "train.epochs", 3),
    ("train.seed=7", "train.seed", 7),
    ("optimizer.lr=0.5", "optimizer.args.lr", 0.5),
    ("optimizer=Adam", "optimizer.name", "Adam"),
    ("data.batch_size=8", "data.batch_size", 8),
    ("data.dataset.root=/tmp/x", "data.dataset.args.root", "/tmp/x"),
    ("train.metrics=[accuracy, top5]", "train.metrics", ["accuracy", "top5"]),
    ("log.tensorboard=false", "log.tensorboard", False),
], ids=lambda v: v if isinstance(v, str) and "=" in v else None)
def test_override_lands_where_the_key_says_typed_like_yaml(override: str, where: str,
                                                          expected: Any) -> None:
    assert _value(load_spec(BASE, [override]), where) == expected


def test_single_key_data_section_is_not_mistaken_for_a_named_thing() -> None:
    """data: {dataset: ...} has one key, but data.batch_size is data's own field."""
    spec = load_spec(BASE, ["data.batch_size=8"])
    assert spec.data is not None and spec.data.dataset.args == {"root": "data"}


def test_later_override_wins() -> None:
    assert load_spec(BASE, ["train.epochs=3", "train.epochs=4"]).train.epochs == 4


def test_model_argument_override_reaches_the_layer() -> None:
    graph = validate(BASE, overrides=["model.0.Linear.out_features=7"], shapes=False)
    assert graph.root.nodes[0].body.kwargs["out_features"] == 7  # type: ignore[union-attr]


TWO = "nnspec: 2\ninput: [4]\nmodel:\n  - Linear: {out_features: 3}\n  - ReLU\n"


@pytest.mark.parametrize(("override", "kept", "copies"), [
    ("model.0.if=false", ["ReLU"], None),  # beside the layer, not among its arguments
    ("model.0.repeat=2", ["Net", "ReLU"], ["0", "1"]),
    ("model.0.repeat={times: 2, name: 'fc${index}'}", ["Net", "ReLU"], ["fc0", "fc1"]),
])
def test_item_keys_are_set_beside_the_layer(override: str, kept: list[str],
                                            copies: list[str] | None) -> None:
    graph = validate(TWO, overrides=[override], shapes=False)
    bodies = [node.body for node in graph.root.nodes]
    assert [getattr(b, "op", type(b).__name__) for b in bodies] == kept
    if copies:
        assert [n.name for n in bodies[0].nodes] == copies  # type: ignore[union-attr]


@pytest.mark.parametrize(("overrides", "located", "message"), [
    (["train.epochs=x"], "<override 1: train.epochs=x>:1:1",
     "train.epochs: expected an integer, found 'x'"),
    (["train.epochs=3", "train.seed=-1"], "<override 2: train.seed=-1>:1:1",
     "train.seed: expected a number >= 0, found -1"),
    (["train.epoch=3"], "<override 1: train.epoch=3>:1:1",
     "train.epoch: unknown key 'epoch' (did you mean 'epochs'?)"),
    (["optimizer.lr=fast"], "<override 1: optimizer.lr=fast>:1:1",
     "optimizer.SGD.lr: expected a number, found 'fast'"),
    (["trian.epochs=3"], "<override 1: trian.epochs=3>:1:1",
     "trian: unknown section 'trian' (did you mean 'train'?)"),
    (["train.epochs"], "<override 1: train.epochs>:1:1", "an override is KEY=VALUE"),
    (["=3"], "<override 1: =3>:1:1", "an override is KEY=VALUE"),
    (["model.5.x=1"], "<override 1: model.5.x=1>:1:1", "model: no item 5 in this list of 1"),
    (["train.epochs.x=1"], "<override 1: train.epochs.x=1>:1:1",
     "cannot set 'x' inside a plain value"),
    (["train.epochs=[1, 2"], "<override 1: train.epochs=[1, 2>:1:1", "invalid YAML"),
    (["train.epochs=!!python/name:os.system"], "<override 1: train.epochs=!!python/name:os.system>"
     ":1:1", "YAML tags are not allowed"),
    (["train.epochs=1e400"], "<override 1: train.epochs=1e400>:1:1", "out of range"),
    (["scheduler.name=StepLR"], "<override 1: scheduler.name=StepLR>:1:1",
     "scheduler: the spec has no 'scheduler' to change (give it whole, e.g. "
     "scheduler='{StepLR: {step_size: 5}}')"),
    (["scheduler={ReduceLROnPlateau: {}, interval: step}"],
     "<override 1: scheduler={ReduceLROnPlateau: {}, interval: step}>:1:1",
     "scheduler.interval: ReduceLROnPlateau is stepped with the monitored metric"),
], ids=["wrong-type", "second-of-two", "misspelt-key", "named-skip-wrong-type",
        "unknown-section", "no-equals", "no-key", "no-such-item", "inside-a-scalar",
        "bad-yaml", "yaml-tag", "float-overflow", "absent-named-section", "plateau-per-step"])
def test_bad_override_is_located_at_the_override(overrides: list[str], located: str,
                                                 message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(BASE, overrides)
    rendered = info.value.render()
    assert rendered.startswith(f"{located}: error: "), rendered
    assert message in rendered


def test_all_bad_overrides_are_reported_at_once() -> None:
    with pytest.raises(SpecError) as info:
        load_spec(BASE, ["train.epochs", "trian.x=1", "model.9.x=1"])
    assert len(info.value.problems) == 3


def test_overrides_leave_the_document_untouched() -> None:
    from nnspec.lang.loader import loads
    from nnspec.lang.overrides import apply_overrides

    doc = loads(BASE)
    apply_overrides(doc, ["train.epochs=9", "optimizer.lr=1.0"])
    assert doc.data["train"]["epochs"] == 2 and doc.data["optimizer"]["SGD"]["lr"] == 0.1


NAMED = """\
nnspec: 1
input: [4]
vars: {width: 8}
blocks:
  Mix:
    graph:
      fc1: {Linear: {out_features: $width}}
model:
  body: Mix
  fc: {Linear: {out_features: 3}}
"""


@pytest.mark.parametrize(("override", "message"), [
    ("vars.widht=16", "vars.widht: the spec has no var 'widht': setting it would change "
     "nothing (did you mean 'width'?)"),
    ("model.fcc.Linear.out_features=5", "model.fcc: model has no item 'fcc' (did you mean "
     "'fc'?)"),
    ("model.0.out_features=5", "model.0: model has no item '0' (an override changes the "
     "spec's own items: body, fc)"),
    ("blocks.Mx.graph.fc1.Linear.out_features=2", "blocks.Mx: blocks has no block 'Mx' (did "
     "you mean 'Mix'?)"),
    ("blocks.Mix.graph.fc2.Linear.out_features=2", "has no item 'fc2' (did you mean 'fc1'?)"),
    ("train..epochs=3", "the key 'train..epochs' has an empty part"),
], ids=["misspelt-var", "misspelt-layer", "index-of-a-mapping", "misspelt-block",
        "misspelt-node", "empty-part"])
def test_an_override_that_would_add_instead_of_change_is_refused(override: str,
                                                                 message: str) -> None:
    """A typo in a name once added a layer, a var or a block that changed nothing (or the
    model) silently."""
    with pytest.raises(SpecError) as info:
        load_spec(NAMED, [override])
    rendered = info.value.render()
    assert rendered.startswith(f"<override 1: {override}>:1:1: error: ") and message in rendered


@pytest.mark.parametrize(("override", "where", "expected"), [
    ("vars.width=16", ("vars", "width"), 16),
    ("model.fc.Linear.bias=false", ("model", "fc", "Linear", "bias"), False),  # a new argument
    ("blocks.Mix.graph.fc1.out_features=2", ("blocks", "Mix", "graph", "fc1", "Linear",
                                             "out_features"), 2),
], ids=["var", "new-argument", "in-a-block"])
def test_changes_to_what_the_spec_has_still_land(override: str, where: tuple[str, ...],
                                                 expected: object) -> None:
    from nnspec.lang.loader import loads
    from nnspec.lang.overrides import apply_overrides

    data = apply_overrides(loads(NAMED), [override]).data
    for key in where:
        data = data[key]
    assert data == expected


def test_a_list_item_is_reached_as_errors_write_it() -> None:
    from nnspec.lang.loader import loads
    from nnspec.lang.overrides import apply_overrides

    data = apply_overrides(loads(BASE), ["model[0].out_features=5"]).data
    assert data["model"][0]["Linear"]["out_features"] == 5
