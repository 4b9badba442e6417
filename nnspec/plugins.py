"""Custom layers: ``nn.Module`` classes from Python code the user chose, never from a spec.

A spec is data (DESIGN.md, Trust), so a spec cannot name a module to import.  Custom layers come
in two ways, both decided by the person running nnspec:

* ``nnspec --plugin mypkg.layers COMMAND ...`` (or :func:`loaded` from Python) imports that
  module and makes its public ``nn.Module`` classes usable as layers, by class name.  A module
  may list exactly which with ``NNSPEC_LAYERS = [MyLayer, ...]``.
* An installed package declares an entry point in the ``nnspec.layers`` group, named after the
  layer (``MyLayer = "mypkg.layers:MyLayer"``).  It is imported only when a spec uses that name.

A plugin layer is a catalogue entry like torch's: its arguments, their JSON types and defaults
come from its ``__init__`` signature, arguments such as ``in_features`` or ``in_channels`` are
inferred from the input shape, and its number of inputs from ``forward``.  It is checked on the
meta device, built, emitted (the emitted module imports it from its module) and trained like any
layer.  It may not take the name of a torch layer or graph op.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnspec import catalogue
from nnspec.compiler.emit.names import MODULE_NAMES, plain_identifier
from nnspec.errors import Location, NnspecError, SpecError
from nnspec.lang.model_ast import CONTAINER_KEYS

ENTRY_POINT_GROUP = "nnspec.layers"
MAX_INPUTS = 16  # a forward(*xs): the most inputs a graph node may give it


@dataclass(frozen=True)
class Plugin:
    name: str  # the layer name specs use: the class name
    cls: type
    module: str  # where emitted code imports it from
    origin: str  # "--plugin mypkg.layers" or "entry point mypkg.layers:Name", for messages
    installed: bool  # the module lives in site-packages (emitted imports sort it as isort does)


_registry: dict[str, Plugin] = {}


def registered() -> dict[str, Plugin]:
    """The custom layers loaded in this process, by name."""
    return dict(_registry)


def get(name: str) -> Plugin | None:
    return _registry.get(name)


def layer_class(name: str) -> Any:
    """The class a layer name builds: a plugin's, else the catalogue's (torch.nn, torchvision)."""
    import importlib

    plugin = _registry.get(name)
    if plugin is not None:
        return plugin.cls
    entry = catalogue.layers().get(name)
    return getattr(importlib.import_module(entry.module if entry else "torch.nn"), name)


@contextlib.contextmanager
def loaded(*modules: str) -> Iterator[list[str]]:
    """Load plugin modules for the duration of the block; yields the layer names added."""
    before = set(_registry)
    try:
        yield [name for module in modules for name in load_module(module)]
    finally:
        for name in set(_registry) - before:
            _unregister(name)


def load_module(path: str, origin: str | None = None) -> list[str]:
    """Import ``path`` (a dotted module name) and register its layers; their names."""
    origin = origin or f"--plugin {path}"
    if not all(part.isidentifier() for part in path.split(".")):
        raise _error(origin, f"'{path}' is not a module name",
                     "--plugin takes an importable module such as mypkg.layers, not a file "
                     "path: put the file's folder on PYTHONPATH and give its name")
    try:
        module = importlib.import_module(path)
    except ImportError as exc:
        raise _error(origin, f"cannot import plugin module '{path}': {exc}",
                     "install the package, or put the module's folder on PYTHONPATH") from None
    classes = _classes_of(module)
    if not classes:
        raise _error(origin, f"plugin module '{path}' defines no nn.Module class",
                     "define the layer classes there, or list them in NNSPEC_LAYERS")
    return [register(cls, module.__name__, origin) for cls in classes]


def _classes_of(module: Any) -> list[type]:
    from torch import nn

    listed = getattr(module, "NNSPEC_LAYERS", None)
    if listed is not None:
        return [c for c in listed if isinstance(c, type)]
    return [obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, nn.Module)
            and obj.__module__ == module.__name__ and not name.startswith("_")]


def register(cls: type, module: str, origin: str) -> str:
    """Make ``cls`` a layer named after it; its name."""
    from torch import nn

    name = cls.__name__
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise _error(origin, f"{name} is not an nn.Module class")
    if name in _registry:
        if _registry[name].cls is cls:
            return name
        raise _error(origin, f"layer '{name}' is already defined by {_registry[name].origin}",
                     "rename one of the classes")
    if name in catalogue.callables() or name in CONTAINER_KEYS:
        raise _error(origin, f"plugin layer '{name}' would hide torch's or nnspec's '{name}'",
                     "give the class another name")
    if not plain_identifier(name) or name in MODULE_NAMES:  # emitted code imports it by name
        why = (f"would hide the '{name}' that emitted Python uses" if name in MODULE_NAMES else
               "is a Python keyword, a dunder or not a plain ASCII name")
        raise _error(origin, f"plugin layer '{name}' {why}", "give the class another name")
    catalogue.layers()[name] = _entry(name, cls, origin)
    _registry[name] = Plugin(name, cls, module, origin, _installed_module(module))
    _forget_caches()
    return name


def _installed_module(module: str) -> bool:
    """Whether ``module`` was imported from site-packages (a third-party package, to isort)."""
    import site
    import sysconfig

    file = getattr(sys.modules.get(module), "__file__", None)
    if not file:
        return True
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    paths.update(site.getsitepackages())
    resolved = Path(file).resolve()
    return any(resolved.is_relative_to(Path(p).resolve()) for p in paths)


def _unregister(name: str) -> None:
    _registry.pop(name, None)
    catalogue.layers().pop(name, None)
    _forget_caches()


def _forget_caches() -> None:
    from nnspec.lang import schema

    schema.args_validator.cache_clear()


def from_entry_point(name: str) -> bool:
    """Load the installed ``nnspec.layers`` entry point called ``name``, if there is one."""
    for point in _installed().get(name, []):
        origin = f"entry point {point.value}"
        try:
            cls = point.load()
        except Exception as exc:  # the package's own import failed: say which and why
            raise _error(origin, f"cannot load layer '{name}' from {point.value}: {exc}",
                         "reinstall the package that provides it") from None
        if getattr(cls, "__name__", None) != name:
            raise _error(origin, f"entry point '{name}' names {point.value}, whose class is "
                         f"not called {name}", "name the entry point after the class")
        register(cls, point.module, origin)
        return True
    return False


@functools.cache
def _installed() -> dict[str, list[Any]]:
    """The entry points of the ``nnspec.layers`` group, read once per process."""
    from importlib.metadata import entry_points

    found: dict[str, list[Any]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, []).append(point)
    return found


def _entry(name: str, cls: type, origin: str) -> catalogue.Entry:
    from nnspec.catalogue._generate import describe

    info = describe(name, cls)
    signature = inspect.signature(cls)
    missing = [p.name for p in signature.parameters.values()
               if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and p.name not in info["params"]]
    if missing:
        raise _error(origin, f"{name} requires {', '.join(missing)}, which a spec cannot write "
                     "(annotate it as int, float, bool, str, a Literal or a list of numbers)",
                     "give such arguments a default, or keep the class out of NNSPEC_LAYERS")
    params = {pname: catalogue.Param(pname, p["schema"], "default" not in p, p.get("default"),
                                     catalogue.inferred_rule(pname))
              for pname, p in info["params"].items()}
    doc = info["doc"] or f"Custom layer {name} ({origin})."
    return catalogue.Entry(name, "layer", doc, params, catalogue.Traits(inputs=_input_counts(cls)))


def _input_counts(cls: type) -> tuple[int, int]:
    """How many tensors ``forward`` takes: its required and all positional parameters."""
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return 1, 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return max(1, sum(p.default is p.empty for p in params if p.kind is not p.VAR_POSITIONAL)
                   ), MAX_INPUTS
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    return max(1, required), max(1, len(positional))


def meta_failure(name: str, method: str, exc: BaseException) -> tuple[str, str] | None:
    """What to say when a custom layer's ``method`` failed on the meta device because it needs
    real data (``.item()``, numpy...): a message naming the plugin's line, and a hint; else None."""
    plugin = _registry.get(name)
    if plugin is None or "meta" not in str(exc).lower():
        return None
    import traceback

    file = getattr(sys.modules.get(plugin.cls.__module__), "__file__", None)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if file and f.filename == file]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"custom layer {name}'s {method} cannot run on the meta device, where nnspec checks "
            f"shapes{where}: {text}",
            "a custom layer must work on meta tensors: compute such values from shapes or "
            "arguments, without .item(), .tolist() or numpy")


def _error(origin: str, message: str, hint: str | None = None) -> NnspecError:
    return SpecError.at(Location(f"<{origin}>"), (), message, hint)
