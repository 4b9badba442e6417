"""What may reach emitted code, and how: names checked, values written only as literals.

A spec comes from a stranger (THREATS.md, "Emitted code").  Names that become Python
identifiers are checked here, values become code only through ``repr`` (``literal``), and free
text (the description, the file name) only through ``doc_text``, which escapes anything that
could end a string or a line.  Names the emitter chooses itself (classes, local variables) are
made safe by ``Namer`` instead of refused, since they are not part of the model's state_dict.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from nnspec.errors import SpecError
from nnspec.lang.model_ast import Source

# Names the emitted module itself uses; a spec's names must not shadow them.
MODULE_NAMES = frozenset({"torch", "nn", "OrderedDict", "Any", "self", "super", "x", "tuple"})


def plain_identifier(name: str) -> bool:
    """ASCII, an identifier, not a keyword or soft keyword, not a dunder."""
    return (isinstance(name, str) and name.isascii() and name.isidentifier()
            and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
            and not name.startswith("__"))


@cache
def module_attributes() -> frozenset[str]:
    """Attributes of every nn.Module: a child with one of these names would hide or break it."""
    from torch import nn

    return frozenset(dir(nn.Module)) | frozenset(vars(nn.Module()))


def check_key(name: str, source: Source) -> None:
    """A child that is reached by key (``self["head"]``, an OrderedDict entry, ``self[0]``)."""
    from nnspec.lang.model_ast import MODULE_NAME

    if not (isinstance(name, str) and name.isascii() and MODULE_NAME.match(name)
            and not name.startswith("__")):
        _refuse(name, source, "is not a plain ASCII name")


def is_child_name(name: str) -> bool:
    """A child that emitted code registers with add_module and reads with getattr: a name
    torch accepts that is no Python identifier (``block1-0``)."""
    from nnspec.lang.model_ast import MODULE_NAME

    return bool(MODULE_NAME.match(name)) and not name.isidentifier() and not name.isdigit()


def is_attribute(name: str) -> bool:
    """Whether ``self.NAME = module`` registers a child that ``self.NAME`` then returns."""
    return plain_identifier(name) and name not in module_attributes()


def check_attribute(name: str, source: Source) -> None:
    """A child reached as ``self.NAME``: also no keyword, no nn.Module attribute."""
    check_key(name, source)
    if not plain_identifier(name):
        _refuse(name, source, "is a Python keyword or not an identifier")
    if name in module_attributes():
        _refuse(name, source, "is an attribute of every nn.Module")


def _refuse(name: str, source: Source, why: str) -> None:
    raise SpecError.at(source.location, source.path,
                       f"cannot emit Python for a module named {name!r}: it {why}",
                       "rename it: ASCII letters, digits and _, not a Python keyword")


class Namer:
    """Hands out distinct, safe identifiers, keeping the wanted name whenever it is safe."""

    def __init__(self, reserved: Iterable[str] = MODULE_NAMES) -> None:
        self.taken = set(reserved)

    def take(self, wanted: str, fallback: str = "v", sep: str = "_") -> str:
        name = wanted if plain_identifier(wanted) else _sanitise(wanted, fallback)
        base, n = name, 1
        while name in self.taken:
            n += 1
            name = f"{base}{sep}{n}"
        self.taken.add(name)
        return name


def _sanitise(name: str, fallback: str) -> str:
    cleaned = "_".join(re.findall(r"[A-Za-z0-9]+", str(name)))
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"{fallback}_{cleaned}" if cleaned else fallback
    return cleaned if plain_identifier(cleaned) else f"{fallback}_{cleaned}"


def class_name(name: str) -> str:
    """``tiny_resnet`` -> ``TinyResnet``; anything else is reduced to ASCII letters and digits."""
    parts = re.findall(r"[A-Za-z0-9]+", str(name))
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    if not camel or camel[0].isdigit():
        camel = "Model" + camel
    return camel if plain_identifier(camel) else camel + "Model"


def literal(value: Any) -> str:
    """Python source for a plain value, built from ``repr`` of its scalars.

    The base types' own ``__repr__`` is called, so a subclass cannot choose its source text.
    Lists become tuples (torch's modules take tuples, and the builder passes tuples).  Strings
    take double quotes when ``repr`` allows it without new escapes, as ruff format would.
    Anything but None, bool, int, finite float, str, list, tuple or dict is refused.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot emit the non-finite number {float.__repr__(value)}")
        return float.__repr__(value).replace("e+", "e")  # 3e38, as ruff format writes 3e+38
    if isinstance(value, str):
        plain = str.__str__(value)
        text = repr(plain)
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in plain else text
    if isinstance(value, list | tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot emit a value of type {type(value).__name__}")


def doc_text(text: str) -> str:
    """Free text made safe inside a triple-quoted docstring: one line, nothing can end it."""
    out = []
    for char in " ".join(str(text).split()):
        if char in '\\"':
            out.append("\\" + char)
        elif not char.isprintable():
            out.append(ascii(char)[1:-1])
        else:
            out.append(char)
    return "".join(out)
