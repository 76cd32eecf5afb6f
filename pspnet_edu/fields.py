"""The declared types of a config dataclass's fields, checked: what a hand-edited file gets wrong.

A checkpoint stores its configs (``PSPNetConfig``, ``TrainConfig``) as plain values. One edited
by hand or by another program (``"num_classes": "19"``) would otherwise fail far away, in a
comparison or inside the model, with a TypeError that names neither the field nor the file.
:func:`type_problems` lists such fields in words; the configs raise them as a ValueError.

Not a course concept: plumbing for the configs.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from typing import Any

_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "True or False", type(None): "None"}


def type_problems(config: Any) -> list[str]:
    """One sentence per field of the dataclass ``config`` whose value does not have the declared type.

    ``int`` accepts any integer but a bool, ``float`` any real number but a bool,
    ``tuple[int, ...]`` a tuple (or list) of integers; other classes must match with ``isinstance``.

    >>> @dataclasses.dataclass
    ... class Example:
    ...     num_classes: int = 19
    ...     bins: tuple[int, ...] = (1, 2)
    >>> type_problems(Example(num_classes="19", bins=(1, 2.5)))
    ["num_classes must be an integer, got '19' (str)", 'bins must be a tuple of integers, got (1, 2.5) (tuple)']
    """
    hints = typing.get_type_hints(type(config))
    problems = []
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        if not _fits(value, hint):
            problems.append(f"{field.name} must be {_describe(hint)}, got {value!r} ({type(value).__name__})")
    return problems


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(item, args[0]) for item in value)
        return len(value) == len(args) and all(_fits(item, arg) for item, arg in zip(value, args))
    if hint is int:  # numpy's integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
        return f"a tuple of {len(args)} ({', '.join(_describe(arg) for arg in args)})"
    return _WORDS.get(hint, f"a {getattr(hint, '__name__', hint)}")
