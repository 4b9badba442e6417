"""The ``nnspec`` command: a thin shell over nnspec.api.

Import-light on purpose: ``nnspec --help`` and ``nnspec validate --no-shapes`` never import torch.
Errors a user can cause print as ``FILE:LINE:COL: error: PATH: message (hint)`` and exit 2; a
failed run exits 3; only nnspec's own bugs exit 1 (with a traceback under ``--debug``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from nnspec import __version__
from nnspec.errors import COMMAND_LINE, EXIT_BUG, NnspecError, SpecError, did_you_mean

app = typer.Typer(
    name="nnspec", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="Declarative model specs for PyTorch: validate, compile, emit, summarise and train "
         "networks written as YAML or JSON files.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state: dict[str, Any] = {"debug": False, "global_args": []}


class Format(StrEnum):
    text = "text"
    json = "json"


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


_NODES = "Several machines (torchrun's options, passed on)"

# `nnspec graph -o FILE` without --format: the format FILE's suffix names
_GRAPH_SUFFIXES = {".svg": GraphFormat.svg, ".dot": GraphFormat.dot, ".gv": GraphFormat.dot}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnspec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks.")] = False,
    limit: Annotated[list[str] | None, typer.Option(
        "--limit", help="Raise a safety limit for a spec you trust: NAME=N, NAME one of "
        "max_bytes, max_values, max_depth, max_repeat, max_nodes.")] = None,
    plugin: Annotated[list[str] | None, typer.Option(
        "--plugin", metavar="MODULE", help="Import custom layers (nn.Module classes) from this "
        "Python module, e.g. mypkg.layers; repeatable.")] = None,
) -> None:
    _state["debug"] = debug
    # what a re-launch (torchrun, --nproc-per-node) must pass on to every process
    _state["global_args"] = [*(a for v in limit or [] for a in ("--limit", v)),
                             *(a for v in plugin or [] for a in ("--plugin", v))]
    if limit:
        from nnspec import limits

        # raised for this command only: restored when the command ends (tests, notebooks)
        ctx.with_resource(limits.raised(**_limit_values(limit)))
    if plugin:
        ctx.with_resource(_plugins(plugin))


def _plugins(modules: list[str]) -> contextlib.ExitStack:
    """The plugin modules loaded for this command, or a usage error (exit 2)."""
    from nnspec import plugins

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(plugins.loaded(*modules))
    except NnspecError as exc:
        if _state["debug"]:
            raise
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    return stack


def _limit_values(settings: list[str]) -> dict[str, int]:
    from nnspec import limits

    values: dict[str, int] = {}
    for text in settings:
        name, _, number = text.partition("=")
        if name not in limits.NAMES or not number.strip().isdigit() or int(number) < 1:
            close = None if name in limits.NAMES else did_you_mean(name, limits.NAMES,
                                                                   cutoff=0.8)
            hint = "NAME=N with NAME one of " + ", ".join(limits.NAMES)
            typer.echo(_usage(f"bad --limit {text!r}", f"{close} {hint}" if close else hint)
                       .render(), err=True)
            raise typer.Exit(2)
        values[name] = int(number)
    return values


def _run(action: Callable[[], int | None]) -> None:
    """Run a command, turning nnspec's errors into messages and exit codes."""
    try:
        _exit_with(action)
    except typer.Exit as done:
        if "RANK" in os.environ:  # a rank of a job `nnspec train --nproc-per-node` started
            from nnspec.run.distributed import record_exit

            record_exit(done.exit_code)
        raise


def _exit_with(action: Callable[[], int | None]) -> None:
    try:
        code = action() or 0
    except NnspecError as exc:
        if _state["debug"]:
            raise
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception:
        if _state["debug"]:
            raise
        import traceback

        typer.echo("nnspec: internal error (a bug in nnspec, please report it with this "
                   "output):\n" + traceback.format_exc(), err=True)
        raise typer.Exit(EXIT_BUG) from None
    raise typer.Exit(code)


def _spec_paths(incomplete: str) -> list[str]:
    from nnspec.completion import spec_paths

    return spec_paths(incomplete)


def _catalogue_names(incomplete: str) -> list[tuple[str, str]]:
    from nnspec.completion import catalogue_names

    return catalogue_names(incomplete)


Spec = Annotated[str, typer.Argument(help="A spec file (.yaml, .yml or .json), or - for stdin.",
                                     autocompletion=_spec_paths)]
Overrides = Annotated[list[str] | None, typer.Argument(
    help="Overrides as dotted KEY=VALUE, e.g. train.epochs=3 optimizer.lr=0.01.",
    show_default=False)]


@app.command()
def validate(
    files: Annotated[list[str], typer.Argument(
        help="Spec files to check, and KEY=VALUE overrides applied to each.",
        metavar="FILE... [KEY=VALUE...]", autocompletion=_spec_paths)],
    fmt: Annotated[Format, typer.Option("--format", help="text, or json for editors and CI.")]
    = Format.text,
    shapes: Annotated[bool, typer.Option("--shapes/--no-shapes",
                                         help="Also check shapes (imports torch).")] = True,
) -> None:
    """Check specs: schema, references, arguments and shapes; report every error."""

    def action() -> int:
        from nnspec.api import validate as check_one

        problems: list[Any] = []
        overrides = [a for a in files if _is_override(a)]
        for file in [a for a in files if not _is_override(a)]:
            try:
                graph = check_one(file, shapes=shapes, overrides=overrides)
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            problems.extend(graph.warnings)
            if fmt is Format.text:
                detail = f", {graph.params:,} parameters" if graph.params is not None else ""
                typer.echo(f"{file}: ok ({graph.name}{detail})")
        if fmt is Format.json:
            typer.echo(json.dumps([p.as_json() for p in problems], indent=2))
        elif problems:
            typer.echo(SpecError(problems).render(), err=True)
        return 2 if any(p.is_error for p in problems) else 0

    _run(action)


def _is_override(arg: str) -> bool:
    """KEY=VALUE among validate's files: has '=' and is not an existing file."""
    return "=" in arg and not Path(arg).is_file()


@app.command(name="compile")
def compile_command(
    spec: Spec,
    overrides: Overrides = None,
    emit_python: Annotated[bool, typer.Option("--emit-python",
                                              help="Write standalone PyTorch source.")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Print the resolved spec (every auto filled) as YAML, or the model as Python."""

    def action() -> int:
        from nnspec import api

        changes = list(overrides or [])
        text = api.emit(spec, changes) if emit_python else api.lock(spec, changes)
        _write(text, output, force)
        return 0

    _run(action)


@app.command()
def summary(spec: Spec, overrides: Overrides = None) -> None:
    """A table of every layer: output shape, parameters and multiply-accumulates."""

    def action() -> int:
        from nnspec import api
        from nnspec.views.summary import render_summary

        typer.echo(render_summary(api.infer(spec, list(overrides or []))))
        return 0

    _run(action)


@app.command()
def graph(
    spec: Spec,
    overrides: Overrides = None,
    fmt: Annotated[GraphFormat | None, typer.Option(
        "--format", help="mermaid, dot or svg; default: the one -o's suffix names (.svg, .dot, "
        ".gv), else mermaid.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """The architecture as a diagram (Mermaid, Graphviz dot, or SVG)."""

    def action() -> int:
        from nnspec import api
        from nnspec.views.diagram import render_diagram

        chosen = fmt or _GRAPH_SUFFIXES.get(output.suffix.lower() if output else "",
                                            GraphFormat.mermaid)
        _write(render_diagram(api.infer(spec, list(overrides or [])), chosen.value), output,
               force)
        return 0

    _run(action)


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Print the JSON Schema of the spec language (for editors and CI)."""

    def action() -> int:
        from nnspec.lang.schema import schema_text

        _write(schema_text(), output, force)
        return 0

    _run(action)


@app.command()
def upgrade(
    spec: Spec,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file "
                                                "(default: print it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Rewrite a format-1 spec as format 2 with the same module names; says what it changed."""

    def action() -> int:
        from nnspec.lang.loader import load
        from nnspec.lang.upgrade import upgrade as rewrite

        doc = load(spec)
        text, changes = rewrite(doc)
        _check_writable(output, force)  # refuse before the change lines, which read as done
        for change in changes:
            typer.echo(f"{doc.file}:{change.line}:{change.column}: {change.what}", err=True)
        if not changes:
            typer.echo(f"{doc.file}: already format 2, nothing to change", err=True)
        _write(text, output, force)
        return 0

    _run(action)


@app.command()
def layers(
    name: Annotated[str | None, typer.Argument(help="Show one entry's arguments instead.",
                                               autocompletion=_catalogue_names)] = None,
) -> None:
    """List layers, ops, losses, optimizers, schedulers, inits, transforms and datasets."""

    def action() -> int:
        from nnspec.views.catalogue_docs import describe_entry, list_entries

        typer.echo(describe_entry(name) if name else list_entries())
        return 0

    _run(action)


@app.command()
def train(
    spec: Spec,
    overrides: Overrides = None,
    run_dir: Annotated[str | None, typer.Option("--run-dir", help="Write the run here.")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this run.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:1...")]
    = None,
    explain_init: Annotated[bool, typer.Option(
        "--explain-init", help="Show the init rule of each parameter, then exit without "
        "training.")]
    = False,
    nproc_per_node: Annotated[int | None, typer.Option(
        "--nproc-per-node", help="Train on N processes per node (re-launched through "
        "torchrun); train.strategy says how they share the work (ddp, fsdp).")] = None,
    nnodes: Annotated[str | None, typer.Option(
        "--nnodes", help="torchrun: number of nodes, N or MIN:MAX.", rich_help_panel=_NODES)]
    = None,
    node_rank: Annotated[int | None, typer.Option(
        "--node-rank", help="torchrun: this node's rank (with --master-addr).",
        rich_help_panel=_NODES)] = None,
    rdzv_endpoint: Annotated[str | None, typer.Option(
        "--rdzv-endpoint", help="torchrun: HOST:PORT where the nodes meet (the same on every "
        "node).", rich_help_panel=_NODES)] = None,
    rdzv_id: Annotated[str | None, typer.Option(
        "--rdzv-id", help="torchrun: the job's id, the same on every node.",
        rich_help_panel=_NODES)] = None,
    rdzv_backend: Annotated[str | None, typer.Option(
        "--rdzv-backend", help="torchrun: rendezvous backend (default c10d).",
        rich_help_panel=_NODES)] = None,
    master_addr: Annotated[str | None, typer.Option(
        "--master-addr", help="torchrun: node 0's address (static rendezvous).",
        rich_help_panel=_NODES)] = None,
    master_port: Annotated[int | None, typer.Option(
        "--master-port", help="torchrun: node 0's port (static rendezvous).",
        rich_help_panel=_NODES)] = None,
) -> None:
    """Train the model with the data, loss and optimizer the spec describes."""
    nodes = {"nnodes": nnodes, "node_rank": node_rank, "rdzv_endpoint": rdzv_endpoint,
             "rdzv_id": rdzv_id, "rdzv_backend": rdzv_backend, "master_addr": master_addr,
             "master_port": master_port}

    def action() -> int:
        with _stopping_on_sigterm():
            from nnspec.run.commands import train_command

            launching = any(v is not None for v in nodes.values())
            if (nproc_per_node is not None or launching) and not explain_init:
                from nnspec.run.commands import relaunch_command

                return relaunch_command(nproc_per_node or 1, spec, list(overrides or []),
                                        run_dir, resume, device,
                                        global_args=_state["global_args"], nodes=nodes)
            return train_command(spec, list(overrides or []), run_dir, resume, device,
                                 explain_init)

    _run(action)


@app.command(name="eval")
def eval_command(
    spec: Spec,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="A checkpoint file.")],
    split: Annotated[str | None, typer.Option(
        "--split", help="train, val or test; default: test where the data has one, else val.",
        show_default=False)] = None,
    overrides: Overrides = None,
) -> None:
    """Evaluate a checkpoint on a split; print and write the metrics."""

    def action() -> int:
        from nnspec.run.commands import eval_command as run_eval

        return run_eval(spec, checkpoint, split, list(overrides or []))

    _run(action)


@app.command()
def lsp() -> None:
    """Run the language server for editors (LSP over stdio): diagnostics, hover, completion,
    go to definition. Needs pygls: pip install 'nnspec\\[lsp]'."""
    try:
        import pygls  # noqa: F401  (imported here only: 0.8 s that other commands never pay)
    except ImportError:
        typer.echo("nnspec lsp needs pygls, which is not installed: pip install 'nnspec[lsp]' "
                   "(or pip install pygls)", err=True)
        raise typer.Exit(2) from None
    from nnspec.editor.server import serve

    serve()


class ExportFormat(StrEnum):
    onnx = "onnx"
    pt2 = "pt2"
    safetensors = "safetensors"


@app.command()
def predict(
    spec: Spec,
    inputs: Annotated[list[str], typer.Argument(
        help="Image files (.png, .jpg, ...), tensor files (.pt, .npy, .npz) or CSV files; "
        "KEY=VALUE overrides among them apply to the spec.", metavar="INPUT... [KEY=VALUE...]")],
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="A checkpoint file.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes to show per input.")]
    = 5,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json: one record per "
                                        "input.")] = Format.text,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, ...; "
                                               "default: the spec's train.device.")] = None,
) -> None:
    """Predict: the top classes (or the output) of a trained model for each input."""

    def action() -> int:
        from nnspec.run.commands import predict_command

        files = [a for a in inputs if not _is_override(a)]
        changes = [a for a in inputs if _is_override(a)]
        return predict_command(spec, checkpoint, files, top_k, fmt.value, changes, device)

    _run(action)


@app.command(name="export")
def export_command(
    spec: Spec,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="A checkpoint file.")],
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", help="onnx (dynamic batch), pt2 (torch.export) or safetensors (the "
        "weights, for the class compile --emit-python writes).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write.")],
    overrides: Overrides = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Export a trained model as ONNX, a torch.export program or safetensors weights."""

    def action() -> int:
        from nnspec.run.commands import export_command as run_export

        return run_export(spec, checkpoint, fmt.value, output, list(overrides or []),
                          force=force)

    _run(action)


@app.command()
def runs(
    folder: Annotated[Path, typer.Argument(help="A folder of runs (log.dir), or one run.")]
    = Path("runs"),
) -> None:
    """A table of runs: spec, start, epochs, best monitored metric and epoch, time, status."""

    def action() -> int:
        from nnspec.views.runs import find_runs, runs_table

        typer.echo(runs_table(find_runs(folder)))
        return 0

    _run(action)


@app.command()
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to draw.", metavar="RUN...")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="A .png or .svg file; default: RUN/curves.png for one run, "
        "curves.png for several.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Loss and metric curves of one or more runs, as PNG or SVG (needs matplotlib)."""

    def action() -> int:
        from nnspec.views.plot import format_of, plot_runs
        from nnspec.views.runs import find_runs

        found = [run for folder in run_dirs for run in find_runs(folder)]
        target = output or (run_dirs[0] / "curves.png" if len(run_dirs) == 1
                            else Path("curves.png"))
        _write(plot_runs(found, format_of(target)), target, force)
        return 0

    _run(action)


@contextlib.contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    """SIGTERM during start-up (importing torch, reading data, making the run directory)
    exits 143 without a traceback and without a half-made run directory; the training loop
    takes SIGTERM over while it runs."""
    import signal

    from nnspec.errors import stop_before_training

    try:
        old = signal.signal(signal.SIGTERM, stop_before_training)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _write(text: str | bytes, output: Path | None, force: bool) -> None:
    if output is None or str(output) == "-":
        if isinstance(text, bytes):
            sys.stdout.buffer.write(text)
            return
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    _check_writable(output, force)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_bytes(text) if isinstance(text, bytes) else tmp.write_text(text)
        tmp.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _usage(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {output}", err=True)


def _check_writable(output: Path | None, force: bool) -> None:
    """Refuse an output path that _write would refuse (None or '-' is stdout)."""
    if output is None or str(output) == "-":
        return
    if output.is_dir():
        raise _usage(f"{output} is a folder",
                     f"name a file in it: -o {output / 'NAME'}")
    if output.exists() and not force:
        raise _usage(f"{output} exists", "pass --force to overwrite it")
    if output.is_symlink():
        raise _usage(f"{output} is a symbolic link", "write to a plain path")
    if not output.parent.is_dir():
        raise _usage(f"cannot write {output}: there is no folder {output.parent}",
                     "create it first, or write elsewhere")


def _usage(message: str, hint: str | None = None) -> SpecError:
    return SpecError.at(COMMAND_LINE, (), message, hint)


def main() -> None:
    app(prog_name="nnspec")  # also when run as python -m nnspec: completion calls `nnspec`
