"""Every self-check refuses a learner who reaches the package's own version by a roundabout route.

The direct call, an alias and a subclass are covered in tests/test_checks.py. Here, for every
registered check and every reference it hides: the reference kept in a list, a dict, a
SimpleNamespace, a class attribute, an object's attribute (read directly or by a bound method)
or a nested container (in the learner's module or in a closure), ``functools.partial``, a
``types.FunctionType`` clone of its code, a module and a name put together only at run time,
and the stand-in's old ``_reference`` attribute must all end in the same "write it yourself"
message.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any, Callable

import pytest

from pspnet_edu.checks.hiding import _places, reference_name
from pspnet_edu.checks.registry import CHECKS

NAME = "my_shortcut"


def _named(learner: Callable[..., Any]) -> Callable[..., Any]:
    learner.__name__ = learner.__qualname__ = NAME
    return learner


def _through(get: Callable[[], Any]) -> Callable[..., Any]:
    return _named(lambda *args, **kwargs: get()(*args, **kwargs))


# Module-level holders, as a notebook's cells would define them in __main__.
HELPERS: list[Any] = []
TABLE: dict[str, Any] = {}
NESTED: dict[str, list[Any]] = {"inner": []}
SPACE = types.SimpleNamespace()


def via_global_list(reference):
    HELPERS[:] = [reference]
    return _named(lambda *a, **k: HELPERS[0](*a, **k))


def via_global_dict(reference):
    TABLE["f"] = reference
    return _named(lambda *a, **k: TABLE["f"](*a, **k))


def via_global_nested(reference):
    NESTED["inner"][:] = [reference]
    return _named(lambda *a, **k: NESTED["inner"][0](*a, **k))


def via_global_namespace(reference):
    SPACE.f = reference
    return _named(lambda *a, **k: SPACE.f(*a, **k))


class _Box:
    pass


BOX = _Box()


def via_instance_attribute(reference):
    BOX.f = reference
    return _named(lambda *a, **k: BOX.f(*a, **k))


def via_instance_dict(reference):
    box = _Box()
    box.__dict__["f"] = reference
    return _named(lambda *a, **k: vars(box)["f"](*a, **k))


def via_bound_method(reference):
    class Helper:
        def __init__(self):
            self.f = reference

        def go(self, *a, **k):
            return self.f(*a, **k)

    go = Helper().go
    return _named(lambda *a, **k: go(*a, **k))


def via_runtime_name(reference):
    # the module and the name put together only when the learner's function runs
    module, _, key, _ = next(place for place in _places([reference]))
    parts = [*module.split("."), key]

    def get():
        found = __import__(".".join(parts[:-1]), fromlist=["_"])
        return getattr(found, "".join(parts[-1:]))

    return _through(get)


def via_class_attribute(reference):
    class Helpers:
        f = staticmethod(reference) if isinstance(reference, types.FunctionType) else reference

    return _named(lambda *a, **k: Helpers.f(*a, **k))


def via_closure(reference):
    f = reference
    return _named(lambda *a, **k: f(*a, **k))


def via_closed_list(reference):
    helpers = [reference]
    return _named(lambda *a, **k: helpers[0](*a, **k))


def via_partial(reference):
    return functools.partial(reference)


def via_partial_inside(reference):
    p = functools.partial(reference)
    return _named(lambda *a, **k: p(*a, **k))


def via_code_clone(reference):
    return _named(types.FunctionType(reference.__code__, reference.__globals__, NAME,
                                     reference.__defaults__, reference.__closure__))


def via_stand_in_attribute(reference):
    module, _, key, _ = next(place for place in _places([reference]))

    def get():
        return getattr(sys.modules[module], key)._reference  # the stand-in's, while the check runs

    return _through(get)


ROUTES = [via_global_list, via_global_dict, via_global_nested, via_global_namespace, via_instance_attribute,
          via_instance_dict, via_bound_method, via_runtime_name, via_class_attribute,
          via_closure, via_closed_list, via_partial, via_partial_inside, via_code_clone, via_stand_in_attribute]
CASES = [(entry, shortcut.reference, route) for entry in CHECKS
         for shortcut in entry.shortcuts[:1] for route in ROUTES
         if route is not via_code_clone or isinstance(shortcut.reference, types.FunctionType)]


@pytest.mark.parametrize(("entry", "reference", "route"), CASES,
                         ids=[f"{e.name}-{r.__name__}" for e, _, r in CASES])
def test_a_roundabout_route_to_the_reference_must_write_it_yourself(entry, reference, route):
    learner = route(reference)
    with pytest.raises(AssertionError) as info:
        entry.check(learner)
    message = str(info.value)
    name = getattr(learner, "__name__", "partial")
    assert message.startswith(f"{name} "), message
    assert f" {reference_name(reference)}, the " in message, message
    assert "write it yourself" in message, message


def test_lesson_03_helper_on_a_resnet_built_before_the_check_must_write_it_yourself():
    # notebooks/03_dilated_resnet.ipynb builds ResNets and a stage_shapes helper before exercise 1.
    import torch

    from pspnet_edu.backbone import ResNet
    from pspnet_edu.checks.backbone import check_feature_sizes

    with torch.device("meta"):
        backbones = {os_: ResNet(depth=18, output_stride=os_, width=0.125) for os_ in (32, 16, 8)}

    def stage_shapes(net, input_size):
        shapes = {}
        hooks = [net.get_submodule(name).register_forward_hook(
            lambda module, inputs, output, name=name: shapes.__setitem__(name, output.shape[-1]))
            for name in ("conv1", "layer1", "layer2", "layer3", "layer4")]
        net(torch.empty(1, 3, input_size, input_size, device="meta"))
        for hook in hooks:
            hook.remove()
        return shapes

    def my_feature_sizes(input_size, output_stride):
        return list(stage_shapes(backbones[output_stride], input_size).values())

    with pytest.raises(AssertionError, match=r"^my_feature_sizes uses pspnet_edu\.backbone\.ResNet, the class .*write it yourself"):
        check_feature_sizes(my_feature_sizes)
    assert list(stage_shapes(backbones[8], 473).values()) == [237, 119, 60, 60, 60]  # restored afterwards
