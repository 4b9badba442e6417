"""Safety limits refuse resource bombs by default, and the person running nnspec can raise them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnspec
from nnspec import limits
from nnspec.cli import app
from nnspec.errors import SpecError

BIG_REPEAT = "nnspec: 1\ninput: [4]\nmodel:\n  - {ReLU: null, repeat: 12000}\n"


def test_default_limit_refuses_with_a_hint_naming_the_switch() -> None:
    with pytest.raises(SpecError, match=r"repeat 12000 is over the limit of 10000 .*"
                       r"nnspec --limit max_repeat=N"):
        nnspec.validate(BIG_REPEAT, shapes=False)


def test_raised_limits_accept_the_spec_and_are_restored_afterwards() -> None:
    with limits.raised(max_repeat=20_000, max_nodes=20_000):
        graph = nnspec.validate(BIG_REPEAT, shapes=False)
        assert len(graph.root.nodes[0].body.nodes) == 12_000  # type: ignore[union-attr]
    assert limits.current() == limits.Limits()
    with pytest.raises(SpecError):
        nnspec.validate(BIG_REPEAT, shapes=False)


def test_a_spec_cannot_raise_its_own_limits() -> None:
    with pytest.raises(SpecError, match="unknown section 'limits'"):
        nnspec.validate(BIG_REPEAT + "limits: {max_repeat: 20000}\n", shapes=False)


def test_cli_limit_option_raises_limits_for_one_command(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(BIG_REPEAT)
    runner = CliRunner()
    refused = runner.invoke(app, ["validate", "--no-shapes", str(spec)])
    assert refused.exit_code == 2
    accepted = runner.invoke(app, ["--limit", "max_repeat=20000", "--limit", "max_nodes=20000",
                                   "validate", "--no-shapes", str(spec)])
    assert accepted.exit_code == 0, accepted.output
    assert limits.current() == limits.Limits()


@pytest.mark.parametrize("setting", ["max_rep=3", "max_nodes=0", "max_nodes=x", "max_nodes"])
def test_cli_refuses_a_bad_limit(setting: str) -> None:
    result = CliRunner().invoke(app, ["--limit", setting, "validate", "x.yaml"])
    assert result.exit_code == 2
    assert f"<command line>: error: bad --limit '{setting}'" in result.output


def test_cli_suggests_the_limit_name_meant() -> None:
    result = CliRunner().invoke(app, ["--limit", "max_repat=5", "validate", "x.yaml"])
    assert result.exit_code == 2
    assert "did you mean 'max_repeat'?" in result.output


def test_file_size_limit_can_be_raised(tmp_path: Path) -> None:
    spec = tmp_path / "padded.yaml"
    spec.write_text("nnspec: 1\ninput: [4]\nmodel: [ReLU]\n# " + "x" * 5000 + "\n")
    with limits.raised(max_bytes=1000), pytest.raises(SpecError, match="over the 1000-byte"):
        nnspec.validate(spec, shapes=False)
    assert nnspec.validate(spec, shapes=False).name == "padded"
