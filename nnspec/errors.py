"""One exception family for everything a user can get wrong.

Every problem carries where it is (file, line, column), the path inside the spec
(``model[3].kernel_size``), what went wrong and, where one exists, a hint.  The CLI
prints them as compiler-style lines and exits 2; a failed run exits 3.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PathPart = str | int
SpecPath = tuple[PathPart, ...]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_INVALID = 2
EXIT_RUN_FAILED = 3


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file; line and column count from 1 (0 when unknown)."""

    file: str = "<spec>"
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


COMMAND_LINE = Location("<command line>")
"""Where an error in a command-line option (not in the spec) is reported."""

_LINE_BREAKING = {c: repr(chr(c))[1:-1] for c in [*range(32), 127, 0x85, 0x2028, 0x2029]}


def one_line(text: str) -> str:
    """``text`` with control and line-breaking characters written as escapes."""
    return text.translate(_LINE_BREAKING)


def format_path(path: Sequence[PathPart]) -> str:
    """``("model", 3, "kernel_size")`` -> ``model[3].kernel_size``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


@dataclass(frozen=True)
class Problem:
    """One located error in a spec (or, with ``severity="warning"``, a warning: reported but
    not failing, such as a block named like a layer in spec version 1)."""

    location: Location
    path: SpecPath
    message: str
    hint: str | None = None
    severity: str = "error"  # or "warning"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        """One line, whatever the spec's keys and values hold (a newline in a key is shown
        as ``\\n``, so each problem stays one line for editors and CI)."""
        where = f"{format_path(self.path)}: " if self.path else ""
        text = f"{self.location}: {self.severity}: {where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return one_line(text)

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": format_path(self.path),
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class NnspecError(Exception):
    """Base of every error nnspec raises on purpose."""

    exit_code = EXIT_INVALID


@dataclass
class SpecError(NnspecError):
    """A spec (or an override, or a command line) is invalid: one or more problems."""

    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def at(cls, location: Location, path: Sequence[PathPart], message: str,
           hint: str | None = None) -> SpecError:
        """One located problem as an error: ``raise SpecError.at(loc, ("loss",), "...")``."""
        return cls([Problem(location, tuple(path), message, hint)])

    def __post_init__(self) -> None:
        self.problems = sorted(set(self.problems), key=_problem_order)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)

    def __str__(self) -> str:
        return self.render()


def _problem_order(p: Problem) -> tuple[str, int, int, str, str]:
    return (p.location.file, p.location.line, p.location.column, format_path(p.path), p.message)


class RunError(NnspecError):
    """A run failed for a reason outside nnspec's control (missing data, non-finite loss...)."""

    exit_code = EXIT_RUN_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")


def missing_package(command: str, package: str, extra: str) -> SpecError:
    """A usage error (exit 2) naming the pip command that installs an optional package."""
    return SpecError([Problem(Location("<command line>"), (),
                              f"{command} needs {package}, which is not installed",
                              f"pip install 'nnspec[{extra}]' (or pip install {package})")])


class Stopped(NnspecError):
    """SIGTERM (or SIGINT) arrived before training began: nothing was left behind."""

    def __init__(self, signum: int) -> None:
        self.exit_code = 128 + signum
        super().__init__(f"stopped by signal {signum} before training began; no run was written")


def stop_before_training(signum: int, frame: object) -> None:
    """A signal handler for start-up (the training loop installs its own)."""
    raise Stopped(signum)


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """A hint naming the closest choices to ``word``, case-insensitively first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f"did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, choices, n=3, cutoff=cutoff)
    if not close:
        close_lower = difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=cutoff)
        close = [lowered[c] for c in close_lower]
    if not close:
        return None
    if len(close) == 1:
        return f"did you mean '{close[0]}'?"
    return "did you mean " + ", ".join(f"'{c}'" for c in close[:-1]) + f" or '{close[-1]}'?"


class Collector:
    """Gathers problems so a pass can report all of them at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, location: Location, path: SpecPath, message: str,
            hint: str | None = None) -> None:
        self.problems.append(Problem(location, tuple(path), message, hint))

    def warn(self, location: Location, path: SpecPath, message: str,
             hint: str | None = None) -> None:
        """A problem that does not fail the check: shown, and kept on the checked spec."""
        self.warnings.append(Problem(location, tuple(path), message, hint, "warning"))

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)
