"""The shared machinery of the self-checks: run a learner's code, compare, explain, verdict.

A check in ``pspnet_edu/checks/<concept>.py`` is usually a few lines::

    from pspnet_edu.checks._core import Case, check_cases
    from pspnet_edu.schedule import poly_lr

    def check_poly_lr(my_poly_lr: Callable[..., float]) -> None:
        cases = [Case((0.01, 0, 100)), Case((0.01, 50, 100)), Case((0.1, 10, 100), {"power": 1.0})]
        check_cases(my_poly_lr, poly_lr, cases, hide=(poly_lr,),
                    hint="lr = base_lr * (1 - iteration / max_iterations) ** power")

:func:`check_cases` calls the learner's function and the reference on every case (each on
its own deep copy of the arguments, so neither can spoil the other's input), compares the
results with :func:`differences` (ints exactly, floats and tensors within a tolerance, lists,
tuples, dicts and dataclasses element by element) and either prints one line,
``✓ my_poly_lr matches pspnet_edu.schedule.poly_lr on 3 cases``, or raises an
``AssertionError`` naming the case, the expected and the received value and a hint.

Checks that do more than call a function (build a learner's ``nn.Module``, feed it a tensor)
use the pieces directly: :func:`hidden` around the learner's code, :func:`learner_code` (a
``with`` block that turns the learner's ``NotImplementedError`` into "not implemented yet", a
use of a hidden reference into "write it yourself" and any other exception into an
``AssertionError`` naming the call), :func:`differences`, :func:`fail` and :func:`passed`.

A check must refuse a learner who only calls the package's own version (``def
my_poly_lr(*a, **k): return poly_lr(*a, **k)``): while the learner's code runs, the references
are hidden (:mod:`pspnet_edu.checks.hiding`), and a check computes its expected values *outside*
the hidden block, since the reference may need what is hidden.

Every message is deterministic (no addresses, no timings), because nbval compares the
verdict lines stored in the notebooks. Not a course concept itself: this is the tooling of
the exercises described in ``pspnet_edu/checks/__init__.py``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pspnet_edu.checks.hiding import (  # noqa: F401 (re-exported: the checks import them from here)
    Hiding,
    ReferenceUsed,
    _first_use,
    _places,
    hidden,
    learner_name,
    not_implemented_message,
    reference_name,
    refuse_reference,
    short_repr,
    uses_reference_message,
)

# Default tolerances for floats and floating-point tensors: tight enough to catch a wrong
# formula, loose enough for a different (correct) order of float32 operations.
RTOL = 1e-5
ATOL = 1e-6


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: ``learner(*args, **kwargs)``.

    ``hint`` (optional) is shown when this case fails, in addition to the check's own hint;
    use it to say what the case is about ("a dilated kernel", "stride larger than the kernel").
    """

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    hint: str | None = None

    def call_text(self, name: str) -> str:
        """How the call reads in a message.

        >>> Case((7, 3), {"dilation": 2}).call_text("my_output_size")
        'my_output_size(7, 3, dilation=2)'
        """
        parts = [short_repr(a) for a in self.args] + [f"{k}={short_repr(v)}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"



@contextlib.contextmanager
def learner_code(name: str, call: str | None = None, hiding: Hiding | None = None) -> Iterator[None]:
    """Run the learner's code inside this block; its exceptions become clear AssertionErrors.

    ``NotImplementedError`` (the stub of the student notebook) becomes
    ``AssertionError("<name> is not implemented yet: ...")``; an AssertionError passes through
    unchanged; any other exception becomes ``AssertionError("<call> raised <Type>: <message>")``
    chained to the original, so the traceback still points into the learner's code. A use of a
    hidden reference becomes ``AssertionError("<name> calls <reference>, ...: write it
    yourself ...")``; with ``hiding`` (what :func:`hidden` yields) also when the learner's
    code caught the stand-in's error and went on.

    >>> with learner_code("my_f"):
    ...     raise NotImplementedError()
    Traceback (most recent call last):
    AssertionError: my_f is not implemented yet: replace `raise NotImplementedError()` in its cell with your code, run that cell, then run this check again.
    """
    try:
        yield
    except Exception as error:
        use = _first_use(hiding, error)
        if use is not None:
            raise AssertionError(use.message(name)) from None
        if isinstance(error, NotImplementedError):
            raise AssertionError(not_implemented_message(name)) from None
        if isinstance(error, AssertionError):
            raise
        raise AssertionError(f"{call or name} raised {type(error).__name__}: {error}") from error
    use = _first_use(hiding, None)
    if use is not None:
        raise AssertionError(use.message(name))


def require_callable(learner: Any) -> None:
    """AssertionError unless ``learner`` can be called (a check got a result instead of a function).

    >>> require_callable(5)
    Traceback (most recent call last):
    AssertionError: int is not a function: pass the function itself, e.g. check(my_function), not its result my_function(...)
    """
    if not callable(learner):
        raise AssertionError(
            f"{learner_name(learner)} is not a function: pass the function itself, e.g. check(my_function), "
            "not its result my_function(...)"
        )


def call_learner(learner: Callable[..., Any], case: Case, name: str | None = None, hiding: Hiding | None = None) -> Any:
    """``learner(*case.args, **case.kwargs)`` on a deep copy of the arguments, inside :func:`learner_code`."""
    name = name or learner_name(learner)
    args, kwargs = copy.deepcopy((case.args, dict(case.kwargs)))
    with learner_code(name, case.call_text(name), hiding):
        return learner(*args, **kwargs)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "shape") and hasattr(value, "dtype")


def _is_ndarray(value: Any) -> bool:
    return type(value).__module__.startswith("numpy") and hasattr(value, "shape") and not isinstance(value, numbers.Number)


def _tensor_differences(expected: Any, got: Any, rtol: float, atol: float, where: str) -> str | None:
    import torch  # here, not at the top: importing the checks package stays cheap

    if not (_is_tensor(got) or _is_ndarray(got)):
        return f"{where}expected a {type(expected).__name__} of shape {tuple(expected.shape)}, got {type(got).__name__} {short_repr(got)}"
    exp = torch.as_tensor(expected).detach().cpu()
    out = torch.as_tensor(got).detach().cpu()
    if tuple(exp.shape) != tuple(out.shape):
        return f"{where}expected shape {tuple(exp.shape)}, got shape {tuple(out.shape)}"
    if exp.numel() == 0:
        return None
    if exp.is_floating_point() or out.is_floating_point() or exp.is_complex():
        exp64, out64 = exp.to(torch.float64), out.to(torch.float64)
        close = torch.isclose(out64, exp64, rtol=rtol, atol=atol, equal_nan=True)
    else:
        exp64, out64 = exp.to(torch.int64), out.to(torch.int64)
        close = out64 == exp64
    if bool(close.all()):
        return None
    wrong = int((~close).sum())
    index = tuple(int(i) for i in torch.nonzero(~close)[0])
    return (
        f"{where}{wrong} of {exp.numel()} values differ; the first at index {index}: "
        f"expected {exp64[index].item():.6g}, got {out64[index].item():.6g}"
    )


def differences(expected: Any, got: Any, *, rtol: float = RTOL, atol: float = ATOL, path: str = "") -> str | None:
    """Describe the first difference between ``expected`` and ``got``, or None if they match.

    Ints must be ints and equal; floats equal within ``rtol``/``atol`` (NaN matches NaN);
    tensors and numpy arrays must have the same shape and close values; lists and tuples the
    same length and matching elements; dicts the same keys; dataclasses the same fields.
    Anything else is compared with ``==``.

    >>> differences(3, 3) is None
    True
    >>> differences(3, 3.0)
    'expected the int 3, got the float 3.0 (use // for integer division, or int(...))'
    >>> differences([(3, 1), (5, 2)], [(3, 1), (5, 1)])
    'at [1][1]: expected 2, got 1'
    >>> differences(0.1 + 0.2, 0.3) is None
    True
    """
    where = f"at {path}: " if path else ""
    if _is_tensor(expected) or _is_ndarray(expected):
        return _tensor_differences(expected, got, rtol, atol, where)
    if isinstance(expected, bool):
        if isinstance(got, bool) and got == expected:
            return None
        return f"{where}expected {expected!r}, got {short_repr(got)}"
    if isinstance(expected, numbers.Integral):
        if isinstance(got, numbers.Integral) and not isinstance(got, bool):
            return None if int(got) == int(expected) else f"{where}expected {expected}, got {got}"
        if isinstance(got, float):
            return f"{where}expected the int {expected}, got the float {got!r} (use // for integer division, or int(...))"
        return f"{where}expected the int {expected}, got {type(got).__name__} {short_repr(got)}"
    if isinstance(expected, numbers.Real):
        if not isinstance(got, numbers.Real) or isinstance(got, bool):
            return f"{where}expected the number {expected!r}, got {type(got).__name__} {short_repr(got)}"
        if math.isnan(expected) and math.isnan(got):
            return None
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{where}expected {expected:.6g}, got {got:.6g}"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{where}expected a dict, got {type(got).__name__} {short_repr(got)}"
        if set(expected) != set(got):
            missing, extra = sorted(map(str, set(expected) - set(got))), sorted(map(str, set(got) - set(expected)))
            return f"{where}expected the keys {sorted(map(str, expected))}; missing {missing}, unexpected {extra}"
        for key in expected:
            diff = differences(expected[key], got[key], rtol=rtol, atol=atol, path=f"{path}[{key!r}]")
            if diff:
                return diff
        return None
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        for f in dataclasses.fields(expected):
            if not hasattr(got, f.name):
                return f"{where}expected an object with the attribute .{f.name}, got {short_repr(got)}"
            diff = differences(getattr(expected, f.name), getattr(got, f.name), rtol=rtol, atol=atol, path=f"{path}.{f.name}")
            if diff:
                return diff
        return None
    if isinstance(expected, Sequence) and not isinstance(expected, (str, bytes)):
        if not isinstance(got, Sequence) or isinstance(got, (str, bytes)):
            return f"{where}expected a sequence of {len(expected)} items, got {type(got).__name__} {short_repr(got)}"
        if len(got) != len(expected):
            return f"{where}expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = differences(e, g, rtol=rtol, atol=atol, path=f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if got == expected else f"{where}expected {short_repr(expected)}, got {short_repr(got)}"


def fail(call: str, expected: Any, got: Any, detail: str | None = None, hint: str | None = None) -> AssertionError:
    """The AssertionError of a wrong answer (returned, so that a check reads ``raise fail(...)``).

    >>> print(fail("my_output_size(7, 3, dilation=2)", 3, 5, hint="a dilated kernel spans more pixels"))
    my_output_size(7, 3, dilation=2) gave a wrong result.
      expected: 3
      got:      5
      hint: a dilated kernel spans more pixels
    """
    lines = [f"{call} gave a wrong result.", f"  expected: {short_repr(expected)}", f"  got:      {short_repr(got)}"]
    if detail and detail != f"expected {short_repr(expected)}, got {short_repr(got)}":
        lines.append(f"  difference: {detail}")  # says where, for lists, tensors and types
    if hint:
        lines.append(f"  hint: {hint}")
    return AssertionError("\n".join(lines))


def passed(name: str, against: str, n_cases: int) -> None:
    """Print the one-line verdict of a check that passed.

    >>> passed("my_output_size", "pspnet_edu.dilation.output_size", 12)
    ✓ my_output_size matches pspnet_edu.dilation.output_size on 12 cases
    """
    print(f"✓ {name} matches {against} on {n_cases} case{'s' if n_cases != 1 else ''}")


def check_cases(
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Case],
    *,
    hide: Sequence[Any] = (),
    against: str | None = None,
    hint: str | Callable[[Case, Any, Any], str | None] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    hide_methods: bool = False,
) -> None:
    """Compare ``learner`` with ``reference`` on every case; print a verdict or raise AssertionError.

    ``hint`` is a sentence shown with any failure, or a function ``(case, expected, got)``
    returning a sentence (or None) that diagnoses a particular mistake, e.g. "you forgot the
    dilation" when ``got`` equals the undilated answer. ``against`` names the reference in the
    verdict (default: its ``module.qualname``). ``reference`` and ``hide`` (the package's
    functions, classes or tables the reference is read from, and their aliases) are hidden
    while the learner runs, see :func:`hidden`; so the expected values are computed first, and
    the hints after. ``hide_methods``: the hidden classes' own methods too, so that an object
    built before the check (a notebook's model) cannot run them either.

    >>> def my_square(x):
    ...     return x * x
    >>> check_cases(my_square, lambda x: x ** 2, [Case((2,)), Case((3,))], against="x ** 2")
    ✓ my_square matches x ** 2 on 2 cases
    >>> def my_cube(x):
    ...     raise NotImplementedError()
    >>> check_cases(my_cube, lambda x: x ** 3, [Case((2,))])
    Traceback (most recent call last):
    AssertionError: my_cube is not implemented yet: replace `raise NotImplementedError()` in its cell with your code, run that cell, then run this check again.
    >>> def my_floor(x):
    ...     return math.floor(x)
    >>> check_cases(my_floor, math.floor, [Case((2.5,))])
    Traceback (most recent call last):
    AssertionError: my_floor calls math.floor, the function it is meant to replace: write it yourself (the check hides math's version while it runs your code)
    """
    name = learner_name(learner)
    require_callable(learner)
    references = (reference, *hide)
    refuse_reference(learner, references, name)
    if not cases:
        raise ValueError("check_cases needs at least one case")
    expected_values = []
    for case in cases:
        args, kwargs = copy.deepcopy((case.args, dict(case.kwargs)))
        expected_values.append(reference(*args, **kwargs))
    failure = None
    with hidden(*references, methods=hide_methods) as hiding:
        for case, expected in zip(cases, expected_values):
            got = call_learner(learner, case, name, hiding)
            detail = differences(expected, got, rtol=rtol, atol=atol)
            if detail is not None:
                failure = case, expected, got, detail
                break
    if failure is None:
        passed(name, against or reference_name(reference), len(cases))
        return
    case, expected, got, detail = failure  # diagnosed here: a hint may use what was hidden
    hints = [case.hint] if case.hint else []
    if callable(hint):
        specific = hint(case, expected, got)
        if specific:
            hints.append(specific)
    elif hint:
        hints.append(hint)
    raise fail(case.call_text(name), expected, got, detail, " ".join(hints) or None)
