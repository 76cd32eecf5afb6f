"""Self-checks for notebooks/03_dilated_resnet.ipynb (the dilated ResNet of Zhao et al. 2017, Sec. 3.3).

- :func:`check_feature_sizes`: ``my_feature_sizes(input_size, output_stride)``, the sides of
  the feature maps after ``conv1``, ``layer1``, ``layer2``, ``layer3`` and ``layer4`` of a
  dilated ResNet, against the shapes the package's :class:`pspnet_edu.backbone.ResNet`
  really produces (run on the meta device: shapes only, no arithmetic);
- :func:`check_dilate`: ``my_dilate_(resnet, output_stride)``, surgery that turns a built
  torchvision ResNet (output stride 32) into a dilated one of output stride 8 or 16, in place,
  as the author's code (hszhao/semseg) and DeepLab do with a pretrained network. For ResNet-18,
  34, 50 and 101 with seeded random weights (``DILATE_CASES``: each at output stride 8 or 16 or
  both) and two odd input sizes,
  it compares the outputs of layer1..layer4 with :func:`dilated_reference`, the package's
  ResNet with the same weights (torchvision's ``replace_stride_with_dilation`` network for
  Bottlenecks), and asks for the same modules, tensors and weights as before. A wrong network
  is explained by the first convolution that slides otherwise than the reference's: a
  shortcut that still strides, a padding that is not the dilation, a 1x1 convolution
  dilated, the first block of a stage given the new dilation, layer3 dilated at 16.

While the learner's function runs, the package's code it re-derives is hidden (``*_HIDDEN``
below; :func:`pspnet_edu.checks._core.hidden`): for the sizes, the ResNet and
``feature_size`` (the side after the last stage); for the surgery, what builds a dilated
ResNet directly (:func:`dilate_hidden`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pspnet_edu.backbone import BasicBlock, Bottleneck, ResNet, conv3x3, dilation_plan, feature_size
from pspnet_edu.checks._core import (
    Case,
    check_cases,
    differences,
    fail,
    hidden,
    learner_code,
    learner_name,
    passed,
    refuse_reference,
    require_callable,
)

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")


def feature_sizes(input_size: int, output_stride: int) -> list[int]:
    """The reference: sides of the outputs of conv1 and layer1..layer4 for a square input.

    Read from a real (small) ResNet run on the meta device, so it is what the network does,
    not a formula. The side does not depend on depth or width, only on the strides.

    >>> feature_sizes(473, 8)
    [237, 119, 60, 60, 60]
    >>> feature_sizes(224, 32)
    [112, 56, 28, 14, 7]
    """
    return list(_measured_sizes(input_size, output_stride))


@functools.lru_cache(maxsize=64)
def _measured_sizes(input_size: int, output_stride: int) -> tuple[int, ...]:
    """Cached (a tuple, so nobody can change it): building the ResNet takes some 50 ms, and every
    run of the check needs its 9 cases before the learner's code runs."""
    with torch.device("meta"):
        net = ResNet(depth=18, output_stride=output_stride, width=0.125)
        sizes: dict[str, int] = {}
        hooks = [
            net.get_submodule(name).register_forward_hook(
                lambda module, inputs, output, name=name: sizes.__setitem__(name, output.shape[-1])
            )
            for name in STAGES
        ]
        net(torch.empty(1, 3, input_size, input_size))
    for hook in hooks:
        hook.remove()
    return tuple(sizes[name] for name in STAGES)


FEATURE_SIZES_HIDDEN = (feature_sizes, ResNet, feature_size)  # hidden while the learner's code runs

_FEATURE_SIZE_CASES = (
    Case((224, 32), hint="ImageNet classification: 224 -> 7."),
    Case((473, 8), hint="the crop of the author's code for ADE20K and VOC (hszhao/semseg)."),
    Case((713, 8), hint="the crop of the author's code for Cityscapes."),
    Case((473, 16)),
    Case((473, 32)),
    Case((512, 8), hint="a power of two: every division is exact."),
    Case((97, 8), hint="an odd size: strided layers round up."),
    Case((225, 32), hint="one pixel more than 224."),
    Case((100, 16)),
)


def _feature_sizes_diagnose(case: Case, expected: Any, got: Any) -> str:
    size, output_stride = case.args
    base = ("conv1 (stride 2) halves the side, the max-pool halves it again (layer1 is at 1/4), "
            "layer2 halves it once more; layer3 and layer4 halve it only while the output stride "
            "is not yet reached. Every strided layer is padded, so each maps n to ceil(n / 2).")
    try:
        values = [int(v) for v in got]
    except (TypeError, ValueError):
        return "return a list of five ints. " + base
    strides = (2, 4, 8, min(16, output_stride), min(32, output_stride))
    if values == [size // s for s in strides]:
        return "the strided layers are padded, so the sizes round UP: ceil(n / 2), not n // 2. " + base
    if values == [-(-size // s) for s in (2, 4, 8, 16, 32)]:
        return "with dilation, layer3 and layer4 stop halving once the output stride is reached. " + base
    if len(values) == 5 and values[1] == values[0]:
        return "layer1 follows the 3x3 max-pool (stride 2), so it is at 1/4, not 1/2. " + base
    return base


def check_feature_sizes(my_feature_sizes: Callable[[int, int], Sequence[int]]) -> None:
    """Check ``my_feature_sizes(input_size, output_stride)`` -> [conv1, layer1, ..., layer4].

    >>> def my_feature_sizes(input_size, output_stride):
    ...     return [-(-input_size // s) for s in (2, 4, 8, min(16, output_stride), output_stride)]
    >>> check_feature_sizes(my_feature_sizes)
    ✓ my_feature_sizes matches pspnet_edu.backbone.ResNet on 9 cases
    """
    check_cases(my_feature_sizes, feature_sizes, _FEATURE_SIZE_CASES, hide=FEATURE_SIZES_HIDDEN,
                hint=_feature_sizes_diagnose, against="pspnet_edu.backbone.ResNet",
                hide_methods=True)  # a ResNet the notebook built earlier must not run either


# ------------------------------------------------------------------ my_dilate_: surgery on a built ResNet

# (depth, output stride): BasicBlocks, then Bottlenecks; 34 and 101 have other block counts than 18 and 50
DILATE_CASES = ((18, 8), (18, 16), (34, 8), (50, 8), (50, 16), (101, 16))
DILATE_INPUTS = ((65, 65), (97, 81))  # odd sides: a map one pixel off cannot round its way back
DILATE_STAGES = STAGES[1:]  # layer1 .. layer4


def dilate_hidden() -> tuple[Any, ...]:
    """What :func:`check_dilate` hides while the learner's code runs.

    The reference, the package's ResNet, its blocks and its helpers (which build the dilated
    network directly), and torchvision's ResNet class and builders (``replace_stride_with_dilation``
    builds it too; ``get_model`` reaches ``_resnet``). Not torchvision's ``BasicBlock`` and
    ``Bottleneck``: a learner may test a block's type. A function, not a constant: the lesson's
    other check need not import torchvision.
    """
    from torchvision.models import resnet as tv_resnet

    return (dilated_reference, ResNet, BasicBlock, Bottleneck, conv3x3, dilation_plan, tv_resnet.ResNet,
            tv_resnet._resnet, tv_resnet.resnet18, tv_resnet.resnet34, tv_resnet.resnet50, tv_resnet.resnet101,
            tv_resnet.resnet152)


@functools.lru_cache(maxsize=4)
def _plain_template(depth: int) -> nn.Module:
    """A plain torchvision ResNet-``depth`` with seeded random weights; never handed out (copies are).

    The BatchNorm layers get random statistics and affine parameters too (torchvision starts
    them at 0, 1, 1 and 0, which a re-created layer would reproduce). The global random
    state is left as it was.
    """
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(depth)
        net = getattr(torchvision.models, f"resnet{depth}")()
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0.0, 0.1)
                    module.running_mean.normal_(0.0, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
    return net


def plain_resnet(depth: int) -> nn.Module:
    """A fresh torchvision ResNet-``depth`` (output stride 32, train mode) with the check's weights.

    >>> net = plain_resnet(18)
    >>> net.layer3[0].conv1.stride, net.layer3[0].downsample[0].stride, net.training
    ((2, 2), (2, 2), True)
    """
    return copy.deepcopy(_plain_template(depth))


def dilated_reference(depth: int, output_stride: int) -> ResNet:
    """The reference: the package's ResNet at ``output_stride`` holding the weights of :func:`plain_resnet`.

    With the torchvision stem (torchvision's state dict without ``fc``) and the torchvision
    dilation schedule; for Bottleneck ResNets the same network as torchvision's
    ``resnet50(replace_stride_with_dilation=...)`` (``tests/test_checks_backbone.py``). In eval mode.

    >>> net = dilated_reference(18, 16)
    >>> net.layer4[0].conv1.stride, net.layer4[0].downsample[0].stride, net.layer4[1].conv1.dilation
    ((1, 1), (1, 1), (2, 2))
    """
    with torch.device("meta"):  # no random initialisation: the weights are loaded next
        net = ResNet(depth=depth, output_stride=output_stride, stem="torchvision", dilation_schedule="torchvision")
    net = net.to_empty(device="cpu")
    weights = _plain_template(depth).state_dict()
    net.load_state_dict({key: value for key, value in weights.items() if not key.startswith("fc.")})
    return net.eval()


def _dilate_inputs() -> list[Tensor]:
    return [torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(h * w)) for h, w in DILATE_INPUTS]


def stage_outputs(net: nn.Module, x: Tensor) -> list[Tensor]:
    """The outputs of ``layer1`` .. ``layer4`` of ``net`` (torchvision's ResNet or the package's) for ``x``."""
    outputs: dict[str, Tensor] = {}
    hooks = [net.get_submodule(stage).register_forward_hook(
        lambda module, inputs, output, stage=stage: outputs.__setitem__(stage, output)) for stage in DILATE_STAGES]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for hook in hooks:
            hook.remove()
    return [outputs[stage] for stage in DILATE_STAGES]


@dataclass(frozen=True)
class _Geometry:
    """How a convolution slides over its input: what surgery may change."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...] | None  # None for a 1x1 kernel, where dilation changes nothing

    def text(self) -> str:
        """``stride 1, padding 2, dilation 2`` (no dilation for a 1x1 kernel)."""
        def show(value: tuple[int, ...]) -> str:
            return str(value[0]) if len(set(value)) == 1 else str(value)

        parts = [f"stride {show(self.stride)}", f"padding {show(self.padding)}"]
        return ", ".join(parts + ([f"dilation {show(self.dilation)}"] if self.dilation else []))


def _geometry(conv: nn.Conv2d) -> _Geometry:
    def pair(value: Any) -> tuple[int, ...]:
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    kernel, stride, dilation = pair(conv.kernel_size), pair(conv.stride), pair(conv.dilation)
    if conv.padding in ("same", "valid"):  # the learner may say so; the same as its numbers at stride 1
        padding = tuple(d * (k - 1) // 2 if conv.padding == "same" else 0 for k, d in zip(kernel, dilation))
    else:
        padding = pair(conv.padding)
    return _Geometry(kernel, stride, padding, None if set(kernel) == {1} else dilation)


@dataclass(frozen=True)
class _Expected:
    """What the reference does, for one (depth, output stride): computed once, read-only."""

    outputs: tuple[tuple[Tensor, ...], ...]  # per input of DILATE_INPUTS, layer1..layer4
    geometry: tuple[tuple[str, _Geometry], ...]  # every convolution, in the network's order


@functools.lru_cache(maxsize=len(DILATE_CASES))
def _expected(depth: int, output_stride: int) -> _Expected:
    net = dilated_reference(depth, output_stride)
    return _Expected(tuple(tuple(stage_outputs(net, x)) for x in _dilate_inputs()),
                     tuple((key, _geometry(m)) for key, m in net.named_modules() if isinstance(m, nn.Conv2d)))


_SURGERY_BASE = ("a stage past the output stride stops halving its map, and its 3x3 convolutions dilate instead, "
                 "each block by its dilation (section 5's torchvision schedule); nothing else changes.")


def _explain(key: str, expected: _Geometry, got: _Geometry, block: str, output_stride: int) -> str:
    """Why the convolution ``key`` should slide as ``expected``, for the usual ways to get it wrong."""
    stage, *rest = key.split(".")
    first_block = rest[:1] == ["0"]
    dilated = "layer3 and layer4 give up their stride" if output_stride == 8 else "layer4 gives up its stride"
    kernel = "x".join(map(str, expected.kernel))
    where = f"{key}, a {kernel} convolution of the {block}, has {got.text()}; the reference's has {expected.text()}. "
    if not stage.startswith("layer"):
        return where + "The stem is not part of the surgery: only layer3 and layer4 may change."
    if key.endswith("downsample.0"):
        if got.stride > expected.stride:
            return where + ("The shortcut (downsample) of this block still halves the map while its main path "
                            "no longer does: the block adds the two, so a stage that gives up its stride gives it "
                            "up on both paths.")
        return where + f"At output stride {output_stride} only {dilated}; {stage} still halves its map, on both paths."
    if expected.dilation is None and got.padding != expected.padding:
        return where + ("A 1x1 convolution has no neighbours to spread apart: dilation changes nothing and padding "
                        "only makes its output larger. The 3x3 convolutions are conv1 and conv2 in a BasicBlock, "
                        "conv2 in a Bottleneck.")
    if got.stride != expected.stride:
        if got.stride > expected.stride:
            return where + (f"At output stride {output_stride}, {dilated}: no convolution there may stride any "
                            "more. A stage's stride sits in its first block: in conv1 of a BasicBlock, in conv2 of "
                            "torchvision's Bottleneck.")
        return where + f"At output stride {output_stride} only {dilated}; {stage} still halves its map."
    if got.dilation != expected.dilation and expected.dilation is not None and got.dilation is not None:
        if first_block and got.dilation > expected.dilation:
            return where + (f"The first block of a dilated stage keeps the dilation of the stage before "
                            f"({expected.dilation[0]}): its 3x3 convolution held the stride, so it still reads "
                            "its input at the spacing it had (torchvision's schedule, section 5; the new dilation "
                            "in every block is the paper's)." + (
                                " In a BasicBlock both 3x3 convolutions of that first block keep it, as in the "
                                "package (question 6)." if block == "BasicBlock" else ""))
        if first_block:
            return where + (f"The first block of {stage} keeps the dilation of the stage before, "
                            f"{expected.dilation[0]}: the dilation carries over from one stage to the next.")
        if got.dilation == (1, 1):
            return where + (f"Past the removed stride the map is {expected.dilation[0]}x denser than the one this "
                            "convolution was trained on, so it must spread its taps as much to combine the same "
                            "pixels: every 3x3 convolution of a block (conv1 and conv2 in a BasicBlock, conv2 in a "
                            "Bottleneck).")
        rates = "2 in layer3 and 4 in layer4." if output_stride == 8 else "2 in layer4."
        return where + ("Each stage that gives up its stride doubles the dilation it received: at output stride "
                        f"{output_stride}, {rates}")
    if got.padding != expected.padding and got.dilation is not None:
        d = got.dilation[0]
        return where + (f"A 3x3 convolution with dilation {d} spans {2 * d + 1} pixels: it keeps the size of its "
                        f"map only with padding {d} (lesson 02's output-size formula); any other padding shrinks "
                        "or grows the map.")
    return where + _SURGERY_BASE


def _surgery_hint(net: nn.Module, depth: int, output_stride: int) -> str:
    """The first convolution (in the network's order) that slides otherwise than the reference's, explained."""
    for key, expected in _expected(depth, output_stride).geometry:
        try:
            module = net.get_submodule(key)
        except AttributeError:
            continue
        if isinstance(module, nn.Conv2d) and _geometry(module) != expected:
            block = type(net.get_submodule(".".join(key.split(".")[:2]))).__name__ if key.count(".") >= 2 else "stem"
            return _explain(key, expected, _geometry(module), block, output_stride)
    return ("every convolution slides as in the reference, yet the outputs differ: only the stride, padding and "
            "dilation of existing convolutions may change (a pooling layer, a forward or a weight changed?). "
            + _SURGERY_BASE)


def _named_tensors(net: nn.Module) -> dict[str, Tensor]:
    return {**dict(net.named_parameters()), **dict(net.named_buffers())}


def _check_in_place(call: str, net: nn.Module, returned: Any, modules: Mapping[str, nn.Module],
                    tensors: Mapping[str, Tensor], depth: int) -> None:
    """AssertionError unless the learner returned ``net`` with its own modules, tensors and weights."""
    why = ("surgery changes how the existing convolutions slide (their stride, padding and dilation), in place, "
           "so that the trained weights, and an optimizer or a hook that holds them, stay valid")
    if returned is None:
        raise AssertionError(f"{call} returned None: return the network you changed (an in-place method returns "
                             "its object, as nn.Module.train() does)")
    if returned is not net:
        raise AssertionError(f"{call} returned another {type(returned).__name__}, not the network it was given: "
                             f"{why}; change that network and return it")
    now = dict(net.named_modules())
    for key, module in modules.items():
        if now.get(key) is not module:
            raise AssertionError(f"{call} replaced the module {key or 'resnet'}: {why}. A new layer, or a copy, "
                                 "is not the one the caller holds")
    if set(now) != set(modules):
        raise AssertionError(f"{call} added the modules {sorted(set(now) - set(modules))}: {why}")
    now_tensors = _named_tensors(net)
    for key, tensor in tensors.items():
        if now_tensors.get(key) is not tensor:
            raise AssertionError(f"{call} replaced the tensor {key}: {why}. Re-creating a layer (or calling its "
                                 "__init__) draws new random weights")
    state = net.state_dict()
    for key, value in _plain_template(depth).state_dict().items():
        if not torch.equal(state[key], value):
            raise AssertionError(f"{call} changed the values of {key}: {why}; reset_parameters() or a new "
                                 "initialisation throws the pretrained weights away")


def _compare_stages(call: str, net: nn.Module, x: Tensor, expected: Sequence[Tensor], depth: int,
                    output_stride: int) -> None:
    size = "x".join(map(str, x.shape))
    try:
        got = stage_outputs(net, x)
    except Exception as error:  # noqa: BLE001 - any failure of the changed network is the learner's to see
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise AssertionError(f"{call}: the network it returns fails on a {size} input: {type(error).__name__}: "
                             f"{message}\n  hint: {_surgery_hint(net, depth, output_stride)}") from None
    for stage, want, have in zip(DILATE_STAGES, expected, got):
        where = f"{call}, then the {stage} output for a {size} input,"
        if tuple(want.shape) != tuple(have.shape):
            raise fail(where, tuple(want.shape), tuple(have.shape), None, _surgery_hint(net, depth, output_stride))
        detail = differences(want, have, rtol=1e-4, atol=1e-4)
        if detail is not None:
            raise fail(where, want, have, detail, _surgery_hint(net, depth, output_stride))


def check_dilate(my_dilate_: Callable[[nn.Module, int], nn.Module]) -> None:
    """Check ``my_dilate_(resnet, output_stride)``, in-place surgery on a torchvision ResNet.

    For ResNet-18, 34, 50 and 101 (random, seeded weights) at output stride 8 or 16 (``DILATE_CASES``): the
    learner's function must return the network it was given, with the same modules, tensors
    and weights, and in eval mode its layer1..layer4 must give the sizes and values of
    :func:`dilated_reference` on a 65x65 and a 97x81 input.

    >>> def my_dilate_(resnet, output_stride):
    ...     resnet.layer4[0].conv1.stride = (1, 1)  # forgets the rest, and to return the network
    >>> check_dilate(my_dilate_)
    Traceback (most recent call last):
    AssertionError: my_dilate_(torchvision.models.resnet18(), 8) returned None: return the network you changed (an in-place method returns its object, as nn.Module.train() does)
    """
    name = learner_name(my_dilate_)
    require_callable(my_dilate_)
    hides = dilate_hidden()
    refuse_reference(my_dilate_, hides, name)
    inputs = _dilate_inputs()
    for depth, output_stride in DILATE_CASES:
        expected = _expected(depth, output_stride).outputs  # before hiding: the reference is hidden then
        net = plain_resnet(depth)
        call = f"{name}(torchvision.models.resnet{depth}(), {output_stride})"
        modules, tensors = dict(net.named_modules()), _named_tensors(net)
        with hidden(*hides) as hiding, learner_code(name, call, hiding):
            returned = my_dilate_(net, output_stride)
        _check_in_place(call, net, returned, modules, tensors, depth)
        net.eval()
        for x, want in zip(inputs, expected):
            _compare_stages(call, net, x, want, depth, output_stride)
    passed(name, "pspnet_edu.backbone.ResNet", len(DILATE_CASES) * len(inputs))
