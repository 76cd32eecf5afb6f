"""Hiding the package's reference while a learner's code runs, and naming it in messages.

A self-check must refuse a learner who only calls the package's own version of the exercise
(``def my_poly_lr(*a, **k): return poly_lr(*a, **k)``). :func:`hidden` rebinds every module
attribute that holds a reference (in ``pspnet_edu.schedule``, in ``__main__``, the notebook's
namespace, in any module that did ``from pspnet_edu.schedule import poly_lr``) to a stand-in
that raises :class:`ReferenceUsed`, and puts the references back afterwards, also on errors;
:func:`refuse_reference` refuses, before anything runs, the reference itself, a subclass of it,
a copy of its code and a function holding it (in a default argument, a closure, a partial, or a
list, dict, namespace, class or object that its code reads, nested too). The message functions name references the same way everywhere.
Not a sandbox: it stops the shortcut a learner takes in good faith, not one who works around it
on purpose. Used by :mod:`pspnet_edu.checks._core` and the checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math  # noqa: F401 (the doctests name math.floor)
import numbers
import re
import reprlib
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlist = _REPR.maxtuple = 8
_REPR.maxdict = 6
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlevel = 3
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")



def short_repr(value: Any) -> str:
    """A short, deterministic text for a value in a message (tensors by shape and dtype).

    >>> short_repr([1, 2, 3])
    '[1, 2, 3]'
    >>> short_repr(list(range(20)))
    '[0, 1, 2, 3, 4, 5, 6, 7, ...]'
    """
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None and not isinstance(value, numbers.Number):
        if len(shape) == 0:  # a 0-d tensor or array: show the number
            return f"{type(value).__name__}({value.item()!r})"
        return f"{type(value).__name__}(shape={tuple(shape)}, dtype={dtype})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(f"{f.name}={short_repr(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({inner})"
    text = _REPR.repr(value)
    # The default repr of an object holds its memory address, which changes from run to run.
    return _ADDRESS.sub(">", text)


def learner_name(learner: Any) -> str:
    """The name to use in messages: a function's or class's ``__name__``, else its type's name.

    >>> def my_f(x): return x
    >>> learner_name(my_f)
    'my_f'
    """
    return getattr(learner, "__name__", None) or type(learner).__name__


def reference_name(reference: Any) -> str:
    """``module.qualname`` of the package's reference, as shown in the verdict line.

    An object without a qualified name (a lookup table, say) is named after the module
    attribute that holds it, a module of the package first.

    >>> reference_name(math.floor)
    'math.floor'
    """
    return _reference_name(reference, None)


def _reference_name(reference: Any, places: list[_Place] | None) -> str:
    module = getattr(reference, "__module__", None)
    qualname = getattr(reference, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    holders = sorted(
        (0 if m.startswith("pspnet_edu.") and not m.startswith("pspnet_edu.checks") else 1, len(m), m, key)
        for m, _, key, value in (_places([reference]) if places is None else places)
        if value is reference
    )
    if holders:
        _, _, module, key = holders[0]
        return f"{module}.{key}"
    return f"{module}.{learner_name(reference)}" if isinstance(module, str) else learner_name(reference)


def not_implemented_message(name: str) -> str:
    """The message of the AssertionError raised while the learner's code is still a stub."""
    return (
        f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell "
        "with your code, run that cell, then run this check again."
    )


def uses_reference_message(name: str, reference: Any, label: str | None = None, how: str | None = None) -> str:
    """The message of a learner's code that uses the package's own version of the exercise.

    ``how`` is "calls" (default for a function), "uses" (default for a class or a value),
    "subclasses" or "holds"; ``label`` names the reference (default: :func:`reference_name`).

    >>> print(uses_reference_message("my_floor", math.floor))
    my_floor calls math.floor, the function it is meant to replace: write it yourself (the check hides math's version while it runs your code)
    """
    label = label or reference_name(reference)
    kind = ("class" if isinstance(reference, type) else "function" if callable(reference)
            else "table" if hasattr(reference, "shape") else "value")
    how = how or ("calls" if kind == "function" else "uses")
    owner = "the package" if label.startswith("pspnet_edu") else label.split(".")[0].replace("builtins", "Python")
    why = {
        "subclasses": f"a subclass runs {owner}'s code",
        "holds": "it keeps it in a default argument, a closure, a list, dict, class or object, or functools.partial",
    }.get(how, f"the check hides {owner}'s version while it runs your code")
    return f"{name} {how} {label}, the {kind} it is meant to replace: write it yourself ({why})"


# ------------------------------------------------------------------ hiding the references

# (module name, module namespace, attribute, value): one place a loaded module holds an object.
_Place = tuple[str, dict[str, Any], str, Any]


def _places(objects: Sequence[Any]) -> list[_Place]:
    """Every attribute of every loaded module (``__main__`` included) that holds one of ``objects``."""
    wanted = {id(obj) for obj in objects}  # by identity: a tensor or an array has no usable ==
    found = []
    for module_name, module in list(sys.modules.items()):
        if not issubclass(type(module), types.ModuleType):
            continue  # a few libraries put other objects into sys.modules
        namespace = object.__getattribute__(module, "__dict__")  # not module.__dict__: a lazy module would load
        if wanted.isdisjoint(map(id, list(namespace.values()))):
            continue  # the usual case, decided without a Python loop: this pass runs twice per check
        for key, value in list(namespace.items()):
            if id(value) in wanted:
                found.append((module_name, namespace, key, value))
    return found


class ReferenceUsed(AssertionError):
    """What the stand-in of a hidden reference raises when the learner's code uses it."""

    def __init__(self, reference: Any, label: str) -> None:
        super().__init__(f"{label} is hidden while a check runs the learner's code: write it yourself")
        self.reference, self.label = reference, label

    def message(self, name: str) -> str:
        """The same, in the words of :func:`uses_reference_message` for the learner ``name``."""
        return uses_reference_message(name, self.reference, self.label)


@dataclass
class Hiding:
    """What :func:`hidden` yields: the hidden references and every use of them, in order."""

    references: tuple[Any, ...]
    used: list[ReferenceUsed] = field(default_factory=list)


# id of a stand-in -> (its reference, its Hiding), while :func:`hidden` runs.
_STAND_INS: dict[int, tuple[Any, Hiding]] = {}


def _reference_of(stand_in: _StandIn) -> Any:
    return _STAND_INS[id(stand_in)][0]


class _StandIn:
    """What the names of a hidden reference point to while the learner's code runs: any use raises.

    A call, an attribute (``EndlessBatches(...).per_epoch``, ``TABLE.take``), an index
    (``TABLE[ids]``), ``np.asarray``, ``isinstance`` and subclassing all count as a use, and each
    use is recorded in the :class:`Hiding`, so that catching the error does not hide it.
    """

    def __init__(self, reference: Any, label: str, hiding: Hiding) -> None:
        # The reference stays out of the learner's reach: not an attribute, but a module entry.
        self._label = label
        _STAND_INS[id(self)] = (reference, hiding)

    def _used(self) -> ReferenceUsed:
        reference, hiding = _STAND_INS[id(self)]
        error = ReferenceUsed(reference, self._label)
        hiding.used.append(error)
        return error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._used()

    def __getattr__(self, attribute: str) -> Any:  # only for attributes the stand-in does not have
        if attribute in ("_reference", "_hiding"):  # where the reference used to be kept
            raise self._used()
        if attribute.startswith("_"):
            raise AttributeError(attribute)  # what introspection asks for (__wrapped__, _fields, ...)
        raise self._used()

    def __getitem__(self, key: Any) -> Any:
        raise self._used()

    def __iter__(self) -> Any:
        raise self._used()

    def __len__(self) -> int:
        raise self._used()

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._used()

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[Any, ...]:  # class Mine(TheReference): ...
        raise self._used()

    def __instancecheck__(self, instance: Any) -> bool:
        raise self._used()

    def __subclasscheck__(self, subclass: Any) -> bool:
        raise self._used()

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{self._label}, hidden while a check runs the learner's code>"


@contextlib.contextmanager
def hidden(*references: Any, methods: bool = False) -> Iterator[Hiding]:
    """Hide ``references`` from every loaded module while the block runs; restore them afterwards.

    Every module attribute that holds one of them (``pspnet_edu.schedule.poly_lr``,
    ``__main__.poly_lr`` after ``from pspnet_edu.schedule import poly_lr`` in a notebook,
    ``pspnet_edu.checks.schedule.poly_lr``, ...) points to a stand-in that raises
    :class:`ReferenceUsed` when it is used. Afterwards every such attribute holds the reference
    again, also after an exception, and also in a module imported inside the block that picked
    up a stand-in. A function that keeps the reference itself (not its name) is not affected:
    :func:`refuse_reference` refuses those. The stand-in does not keep the reference as an
    attribute (``stand_in._reference`` counts as a use). Hiding costs two passes over the loaded modules
    (about 10 ms each with torch loaded), so a check hides once around all its cases, not per case.
    Another thread that uses a reference meanwhile would meet the stand-in too.

    >>> import pspnet_edu.schedule as schedule
    >>> with hidden(schedule.poly_lr):
    ...     schedule.poly_lr(0.01, 0, 10)
    Traceback (most recent call last):
    pspnet_edu.checks.hiding.ReferenceUsed: pspnet_edu.schedule.poly_lr is hidden while a check runs the learner's code: write it yourself
    >>> schedule.poly_lr(0.01, 0, 10)
    0.01
    """
    unique = tuple({id(reference): reference for reference in references}.values())
    hiding = Hiding(unique)
    places = _places(unique)
    stand_ins = {id(r): _StandIn(r, _reference_name(r, places), hiding) for r in unique}
    # An object built before the check (a notebook's ResNet) would still run the class's code:
    # with ``methods=True`` its own methods answer with the class's stand-in too. Only for a
    # check that computes everything it needs from the classes before the block.
    methods = [(reference, key, value) for reference in (unique if methods else ()) if isinstance(reference, type)
               for key, value in list(vars(reference).items())
               if isinstance(value, types.FunctionType) and not key.startswith("__")]
    try:
        for _, namespace, key, reference in places:
            namespace[key] = stand_ins[id(reference)]
        for reference, key, _ in methods:
            type.__setattr__(reference, key, stand_ins[id(reference)])
        yield hiding
    finally:
        for reference, key, method in methods:
            type.__setattr__(reference, key, method)
        for _, namespace, key, reference in places:
            namespace[key] = reference
        # A module imported inside the block (or a name bound there) may hold a stand-in now.
        for _, namespace, key, stand_in in _places(list(stand_ins.values())):
            namespace[key] = _reference_of(stand_in)
        for stand_in in stand_ins.values():
            del _STAND_INS[id(stand_in)]


# How deep refuse_reference looks from the learner's function: function -> global or cell ->
# container -> nested container -> the reference, with room for a helper function in between.
_HOLD_DEPTH = 6
_CONTAINER_ITEMS = 1000  # a long list of the learner's own numbers is scanned only this far


def _global_names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code (its nested functions and comprehensions too) reads."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _global_names(constant)


def _is_library_class(cls: type) -> bool:
    return cls.__module__ == "builtins" or cls.__module__.split(".")[0] in ("torch", "numpy", "pspnet_edu")


def _is_learner_class(cls: type) -> bool:
    """A class the learner wrote (in the notebook, or a module of their own), not a library's."""
    if cls.__module__ == "__main__":
        return True
    if _is_library_class(cls) or cls.__module__.split(".")[0] in sys.stdlib_module_names:
        return False
    file = str(getattr(sys.modules.get(cls.__module__), "__file__", None) or "")
    return bool(file) and "site-packages" not in file and "dist-packages" not in file


def _children(value: Any, wanted: set[int]) -> list[Any]:
    """What a learner's object keeps: a function's defaults, closure cells and the globals its
    code reads; a partial's function and arguments; a bound method's function and object; a
    container's items; the attributes of a learner's class and of its objects. Modules and the
    objects of the package, the standard library and installed libraries are not looked into."""
    if isinstance(value, functools.partial):
        return [value.func, *value.args, *value.keywords.values()]
    if isinstance(value, types.MethodType):  # a bound method: its function and the object it is bound to
        return [value.__func__, value.__self__]
    if isinstance(value, (staticmethod, classmethod)):
        return [value.__func__]
    if isinstance(value, types.FunctionType):
        held = [getattr(value, "__wrapped__", None), *(value.__defaults__ or ())]
        held += (value.__kwdefaults__ or {}).values()
        for cell in value.__closure__ or ():
            try:
                held.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                pass
        namespace = value.__globals__
        for key in dict.fromkeys(_global_names(value.__code__)):
            # A global that is the reference itself is hidden while the code runs, and refused
            # then with "calls"; what is looked into here is what hiding cannot reach.
            if key in namespace and id(namespace[key]) not in wanted:
                held.append(namespace[key])
        return held
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)[:_CONTAINER_ITEMS]
    if isinstance(value, dict):
        return list(value.values())[:_CONTAINER_ITEMS]
    if isinstance(value, types.SimpleNamespace):
        return list(vars(value).values())
    if isinstance(value, type) and not _is_library_class(value):
        return list(vars(value).values())
    if _is_learner_class(type(value)) and isinstance(getattr(value, "__dict__", None), dict):
        return list(vars(value).values())[:_CONTAINER_ITEMS]  # an object of the learner's class: its attributes
    return []


def _held(learner: Any, references: Sequence[Any]) -> list[Any]:
    """Everything ``learner`` keeps, directly or through containers, closures and helpers."""
    wanted = {id(reference) for reference in references}
    found, seen = [], {id(learner)}
    frontier = [learner]
    for _ in range(_HOLD_DEPTH):
        next_frontier = []
        for value in frontier:
            if isinstance(value, types.ModuleType):
                continue
            for child in _children(value, wanted):
                if child is None or id(child) in seen:
                    continue
                seen.add(id(child))
                found.append(child)
                next_frontier.append(child)
        frontier = next_frontier
    return found


def _is_copy_of(value: Any, reference: Any) -> bool:
    """``value`` is ``reference`` or a function built on its code (``types.FunctionType(ref.__code__, ...)``)."""
    if value is reference:
        return True
    code = getattr(reference, "__code__", None)
    return code is not None and isinstance(value, types.FunctionType) and value.__code__ is code


def refuse_reference(learner: Any, references: Sequence[Any], name: str | None = None) -> None:
    """AssertionError if ``learner`` is one of ``references``, subclasses one, or holds one.

    "Holds": ``functools.partial(poly_lr)``, a default argument ``f=poly_lr`` or a closure over
    ``poly_lr`` keep the reference itself, so hiding its names would not stop them.

    >>> refuse_reference(math.floor, [math.floor], "floor")
    Traceback (most recent call last):
    AssertionError: floor is the package's own math.floor: write your own version
    >>> import functools
    >>> refuse_reference(functools.partial(math.floor), [math.floor], "my_floor")
    Traceback (most recent call last):
    AssertionError: my_floor holds math.floor, the function it is meant to replace: write it yourself (it keeps it in a default argument, a closure, a list, dict, class or object, or functools.partial)
    """
    name = name or learner_name(learner)
    for reference in references:
        if learner is reference:
            raise AssertionError(f"{name} is the package's own {reference_name(reference)}: write your own version")
    for reference in references:
        if isinstance(learner, type) and isinstance(reference, type) and issubclass(learner, reference):
            raise AssertionError(uses_reference_message(name, reference, how="subclasses"))
        if _is_copy_of(learner, reference):
            raise AssertionError(uses_reference_message(name, reference, how="holds"))
    held = _held(learner, references)
    for reference in references:
        if any(_is_copy_of(value, reference) for value in held):
            raise AssertionError(uses_reference_message(name, reference, how="holds"))


def _first_use(hiding: Hiding | None, error: BaseException | None) -> ReferenceUsed | None:
    if hiding is not None and hiding.used:
        return hiding.used[0]
    return error if isinstance(error, ReferenceUsed) else None
