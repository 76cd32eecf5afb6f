"""The contract every self-check keeps, over the registry in pspnet_edu/checks/registry.py.

For every check: the student stub fails with "not implemented yet"; a learner that only calls
the package's own version fails with "write it yourself", naming that version; the check
hides exactly the references its entry lists while the learner's code runs, and they are all
back afterwards. And every ``check_*`` function of the package has an entry.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import types

import pytest

import pspnet_edu.checks
import pspnet_edu.schedule
from pspnet_edu.checks.hiding import _StandIn, learner_name, reference_name
from pspnet_edu.checks.registry import CHECKS
from pspnet_edu.checks.schedule import check_poly_lr


def holders(references):
    """{(module name, attribute): id of the reference} for every loaded module attribute holding one."""
    wanted = {id(r) for r in references}
    return {
        (name, key): id(value)
        for name, module in list(sys.modules.items()) if isinstance(module, types.ModuleType)
        for key, value in list(vars(module).items()) if id(value) in wanted
    }


def stand_ins_left():
    return [(name, key) for name, module in list(sys.modules.items()) if isinstance(module, types.ModuleType)
            for key, value in list(vars(module).items()) if type(value) is _StandIn]


def right_poly_lr(base_lr, iteration, max_iterations, power=0.9):
    return base_lr * (1 - min(iteration, max_iterations) / max_iterations) ** power


def test_registry_covers_every_check():
    defined = set()
    for info in pkgutil.iter_modules(pspnet_edu.checks.__path__):
        if info.name.startswith("_"):
            continue  # _core: the machinery (check_cases is no exercise's check)
        module = importlib.import_module(f"pspnet_edu.checks.{info.name}")
        defined |= {f"{module.__name__}.{name}" for name, value in vars(module).items()
                    if name.startswith("check_") and inspect.isfunction(value) and value.__module__ == module.__name__}
    registered = [f"{entry.check.__module__}.{entry.name}" for entry in CHECKS]
    assert len(registered) == len(set(registered)), "a check is registered twice"
    assert set(registered) == defined, "every check_* function needs an entry in pspnet_edu/checks/registry.py"


@pytest.mark.parametrize("entry", CHECKS, ids=lambda entry: entry.name)
def test_stub_is_not_implemented_yet(entry):
    stub = entry.stub()
    with pytest.raises(AssertionError, match=f"^{learner_name(stub)} is not implemented yet"):
        entry.check(stub)


SHORTCUTS = [(entry, shortcut) for entry in CHECKS for shortcut in entry.shortcuts]


@pytest.mark.parametrize(
    ("entry", "shortcut"), SHORTCUTS,
    ids=[f"{e.name}-{i}-{reference_name(s.reference).rsplit('.', 1)[-1]}"
         for i, (e, s) in enumerate(SHORTCUTS)],
)
def test_a_learner_that_calls_the_package_must_write_it_yourself(entry, shortcut):
    assert any(shortcut.reference is hidden for hidden in entry.hides), "the shortcut must use a hidden reference"
    learner = shortcut.build()
    with pytest.raises(AssertionError) as info:
        entry.check(learner)
    message = str(info.value)
    assert message.startswith(f"{learner_name(learner)} "), message
    assert f" {reference_name(shortcut.reference)}, the " in message, message
    assert ": write it yourself (" in message and "0x" not in message, message
    assert not stand_ins_left()


@pytest.mark.parametrize("entry", CHECKS, ids=lambda entry: entry.name)
def test_check_hides_its_references_while_the_learner_runs_and_restores_them(entry):
    before = holders(entry.hides)
    assert set(before.values()) == {id(r) for r in entry.hides}, "every hidden reference is reachable by name"
    reachable_while_running = []

    def my_probe(*args, **kwargs):
        reachable_while_running.extend(place for place, ref in before.items()
                                       if id(getattr(sys.modules[place[0]], place[1])) == ref)
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="^my_probe is not implemented yet"):
        entry.check(my_probe)
    assert reachable_while_running == []
    assert holders(entry.hides) == before
    assert not stand_ins_left()


def test_references_are_back_after_a_check_passed_or_failed(monkeypatch, capsys):
    main = sys.modules["__main__"]  # the notebook kernel's namespace
    original = pspnet_edu.schedule.poly_lr
    # as after a cell `from pspnet_edu.schedule import poly_lr`
    monkeypatch.setattr(main, "poly_lr", original, raising=False)

    def my_poly_lr(base_lr, iteration, max_iterations, power=0.9):
        return sys.modules["__main__"].poly_lr(base_lr, iteration, max_iterations, power)  # the cell's name

    with pytest.raises(AssertionError) as info:
        check_poly_lr(my_poly_lr)
    assert str(info.value) == (
        "my_poly_lr calls pspnet_edu.schedule.poly_lr, the function it is meant to replace: write it yourself "
        "(the check hides the package's version while it runs your code)")
    assert main.poly_lr is original and pspnet_edu.schedule.poly_lr is original
    assert pspnet_edu.schedule.poly_lr(0.01, 0, 10) == 0.01

    check_poly_lr(right_poly_lr)
    assert capsys.readouterr().out == "✓ right_poly_lr matches pspnet_edu.schedule.poly_lr on 8 cases\n"
    assert main.poly_lr is original and pspnet_edu.schedule.poly_lr(0.01, 0, 10) == 0.01
    assert not stand_ins_left()


def test_a_learner_that_catches_the_error_is_still_refused():
    def my_poly_lr(base_lr, iteration, max_iterations, power=0.9):
        try:
            return pspnet_edu.schedule.poly_lr(base_lr, iteration, max_iterations, power)
        except Exception:  # noqa: BLE001 - what the test is about
            return right_poly_lr(base_lr, iteration, max_iterations, power)

    with pytest.raises(AssertionError, match="^my_poly_lr calls pspnet_edu.schedule.poly_lr"):
        check_poly_lr(my_poly_lr)


def test_a_learner_that_keeps_the_reference_itself_is_refused():
    import functools

    with pytest.raises(AssertionError, match="^partial holds pspnet_edu.schedule.poly_lr, the function"):
        check_poly_lr(functools.partial(pspnet_edu.schedule.poly_lr))

    def my_poly_lr(base_lr, iteration, max_iterations, power=0.9, _lr=pspnet_edu.schedule.poly_lr):
        return _lr(base_lr, iteration, max_iterations, power)

    with pytest.raises(AssertionError, match="my_poly_lr holds pspnet_edu.schedule.poly_lr"):
        check_poly_lr(my_poly_lr)
    with pytest.raises(AssertionError, match="is the package's own pspnet_edu.schedule.poly_lr: write your own"):
        check_poly_lr(pspnet_edu.schedule.poly_lr)

