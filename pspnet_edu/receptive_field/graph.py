"""Receptive fields of any ``nn.Module``: trace its graph with torch.fx and propagate (r, j, p).

A network with several paths (residual additions, concatenations) is not a chain, so the
recurrences of :mod:`.recurrence` are applied along its real graph: every node gets the field
of its input after its own layer; where paths meet, their fields must be *aligned* (the same
jump and centre), and the largest one is the field of the sum. Operations that have no single
field (global pooling of unequal bins, flatten, interpolation) are reported by name.

Taught in notebooks/01_receptive_fields.ipynb; ``pspnet-edu rf`` prints its tables.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from pspnet_edu.receptive_field.recurrence import (
    Layer,
    ReceptiveField,
    ReceptiveField2d,
    check_int,
    check_module,
    conv_layers,
    pool_layers,
)


class _ModuleOutputTracer(torch.fx.Tracer):
    """A torch.fx tracer that also records which graph node is the output of each submodule.

    Containers (``layer3``, ``features``) are traced through, so they have no node of their
    own; we remember the value each ``Module.__call__`` returned. A module called several times
    (torchvision reuses one ``relu`` per block) maps to its *last* call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.module_outputs: dict[str, torch.fx.Node] = {}

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        out = super().call_module(m, forward, args, kwargs)
        if isinstance(out, torch.fx.Proxy):
            self.module_outputs[self.path_of_module(m)] = out.node
        return out


@dataclass(frozen=True)
class _NoField:
    """Why a node has no receptive field (an op we cannot analyse, misaligned paths, ...)."""

    reason: str


@dataclass(frozen=True)
class _Failed:
    """A node whose shape could not be computed (usually: the input is too small)."""

    message: str


# Layers that act on each position separately: their output unit sees what their input unit
# sees. Normalisation layers are counted here as usual, although their statistics (batch
# statistics in training mode, per-image statistics for Group/Instance norm) use every position.
_POINTWISE_MODULES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.Identity,
    nn.modules.dropout._DropoutNd,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
)
_POINTWISE_FUNCTIONS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.gelu, F.silu,
    F.hardswish, F.hardsigmoid, F.sigmoid, torch.sigmoid, F.tanh, torch.tanh, F.elu,
    F.dropout, F.dropout2d, torch.clamp, operator.neg, F.batch_norm,
}
_POINTWISE_METHODS = {
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "clamp", "clamp_", "contiguous",
    "clone", "float", "double", "half", "to", "type_as", "detach", "neg",
}
# Operations that combine several tensors position by position.
_MERGE_FUNCTIONS = {
    operator.add, operator.iadd, operator.sub, operator.mul, operator.imul, operator.truediv,
    torch.add, torch.sub, torch.mul, torch.div,
}
_MERGE_METHODS = {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_"}
_CONCAT_FUNCTIONS = {torch.cat, torch.concat}
_NOT_SPATIAL = (
    "collapses the spatial axes, so every unit after it sees the whole input; "
    "ask for a node before it"
)



def describe_node(node: torch.fx.Node, gm: torch.fx.GraphModule) -> str:
    if node.op == "call_module":
        return f"'{node.target}' ({type(gm.get_submodule(node.target)).__name__})"
    if node.op == "call_method":
        target = f"Tensor.{node.target}"
    else:
        module = getattr(node.target, "__module__", None) or ""
        readable = {"_operator": "operator", "torch._C._nn": "torch.nn.functional"}
        module = readable.get(module, module)
        target = f"{module}.{getattr(node.target, '__name__', node.target)}".lstrip(".")
    stack = node.meta.get("nn_module_stack") or {}
    inside = list(stack.values())[-1][0] if stack else ""
    where = f" inside '{inside}'" if inside else ""
    return f"'{node.name}' ({target}){where}"


def is_feature_map(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _merge(node: torch.fx.Node, gm: torch.fx.GraphModule, inputs: list[Any]) -> Any:
    """Combine the fields of paths that meet (residual add, concatenation).

    The paths must be *aligned*: the same jump and the same centre for unit 0, so that unit i
    of every path is centred on the same input pixel. Then the fields are nested intervals and
    the largest one is the field of the sum.
    """
    named = [(a, f) for a, f in zip(node.all_input_nodes, inputs) if f is not None]
    fields = [f for _, f in named]
    for f in fields:
        if isinstance(f, _NoField):
            return f
    if not fields:
        return None
    axes = []
    for axis in ("height", "width"):
        per_path = [getattr(f, axis) for f in fields]
        # centre of unit 0, doubled to stay an integer: 2*((r-1)/2 - p)
        keys = {(f.stride, f.size - 1 - 2 * f.padding) for f in per_path}
        if len(keys) > 1:
            paths = "; ".join(
                f"from '{a.name}': jump {getattr(f, axis).stride}, unit 0 centred at input "
                f"pixel {getattr(f, axis).center(0):g}"
                for a, f in named
            )
            return _NoField(
                f"the paths meeting at {describe_node(node, gm)} are misaligned along the {axis} "
                f"({paths}), so its units have no single receptive field; give each path "
                f"'same' padding (d(k-1)/2 for a k x k conv with dilation d) and the same total "
                f"stride"
            )
        axes.append(max(per_path, key=lambda f: f.size))
    return ReceptiveField2d(*axes)


def _module_field(
    node: torch.fx.Node, module: nn.Module, field: Any, shapes: dict[torch.fx.Node, Any]
) -> Any:
    name = f"'{node.target}' ({type(module).__name__})"
    if isinstance(module, nn.Conv2d):
        return field.then(*conv_layers(module))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return field.then(*pool_layers(module))
    if isinstance(module, _POINTWISE_MODULES):
        return field
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        # Exact when the input is a multiple of the output: then it is an ordinary pooling
        # with kernel = stride = in/out (global pooling: kernel = the whole feature map).
        # Otherwise its bins have different sizes and overlap: no single (r, j, p).
        x, y = shapes.get(node.args[0]), shapes.get(node)
        if not (is_feature_map(x) and is_feature_map(y)):
            return _NoField(f"{name}: its input or output shape is unknown")
        (hi, wi), (ho, wo) = x.shape[-2:], y.shape[-2:]
        if hi % ho or wi % wo:
            return _NoField(
                f"{name} pools a {hi}x{wi} map into {ho}x{wo} bins of unequal sizes, so its "
                f"units have different receptive fields; choose an input size that makes the "
                f"map a multiple of {ho}x{wo}, or ask for a node before it"
            )
        return field.then(Layer(hi // ho, hi // ho), Layer(wi // wo, wi // wo))
    if isinstance(module, (nn.Linear, nn.Flatten)):
        return _NoField(f"{name} {_NOT_SPATIAL}")
    if isinstance(module, nn.Upsample):
        return _NoField(
            f"{name} interpolates: its units sit between input units, so (r, j, p) do not "
            f"apply; ask for a node before it"
        )
    return _NoField(
        f"{name} is a layer this calculator does not know (supported: Conv2d, Max/AvgPool2d, "
        f"adaptive pooling, normalisation, activations, dropout, add, cat); ask for a node "
        f"before it"
    )


def _propagate(
    gm: torch.fx.GraphModule, shapes: dict[torch.fx.Node, Any]
) -> dict[torch.fx.Node, Any]:
    """(r, j, p) per axis for every node: ReceptiveField2d, _NoField(reason) or None."""
    fields: dict[torch.fx.Node, Any] = {}
    for node in gm.graph.nodes:
        value = shapes.get(node)
        inputs = [fields.get(a) for a in node.all_input_nodes]
        first = inputs[0] if inputs else None
        if node.op == "placeholder":
            fields[node] = ReceptiveField2d.square(ReceptiveField.identity())
        elif node.op in ("get_attr", "output"):
            fields[node] = None
        elif isinstance(first, _NoField) and node.op == "call_module":
            fields[node] = first
        elif node.op == "call_module":
            module = gm.get_submodule(node.target)
            fields[node] = None if first is None else _module_field(node, module, first, shapes)
        elif node.target in _MERGE_FUNCTIONS or (
            node.op == "call_method" and node.target in _MERGE_METHODS
        ):
            fields[node] = _merge(node, gm, inputs)
        elif node.target in _CONCAT_FUNCTIONS:
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            if is_feature_map(value) and dim % 4 in (2, 3):
                fields[node] = _NoField(
                    f"{describe_node(node, gm)} concatenates along a spatial axis; ask for a node "
                    f"before it"
                )
            else:
                fields[node] = _merge(node, gm, inputs)
        elif node.target in _POINTWISE_FUNCTIONS or (
            node.op == "call_method" and node.target in _POINTWISE_METHODS
        ):
            fields[node] = first
        elif all(f is None for f in inputs):
            fields[node] = None  # arithmetic on sizes and constants
        elif not isinstance(value, torch.Tensor):
            fields[node] = None  # x.size(), x.shape, ...
        elif isinstance(first, _NoField):
            fields[node] = first
        elif node.target in (torch.flatten, F.adaptive_avg_pool2d, torch.mean) or (
            node.op == "call_method" and node.target in ("view", "reshape", "flatten", "mean")
        ):
            fields[node] = _NoField(f"{describe_node(node, gm)} {_NOT_SPATIAL}")
        elif node.target is F.interpolate:
            fields[node] = _NoField(
                f"{describe_node(node, gm)} interpolates: its units sit between input units, so "
                f"(r, j, p) do not apply; ask for a node before it"
            )
        else:
            fields[node] = _NoField(
                f"{describe_node(node, gm)} is an operation this calculator does not know; use "
                f"modules (nn.Conv2d, nn.MaxPool2d, ...) or ask for a node before it"
            )
    return fields


class _ShapeInterpreter(torch.fx.Interpreter):
    """Runs the graph on meta tensors; a node that fails becomes _Failed instead of raising."""

    def run_node(self, n: torch.fx.Node) -> Any:
        for a in n.all_input_nodes:
            if isinstance(self.env.get(a), _Failed):
                return self.env[a]
        try:
            return super().run_node(n)
        except Exception as error:  # noqa: BLE001 - reported to the user as a clear ValueError
            return _Failed(f"{type(error).__name__}: {error}".splitlines()[0])


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no memory,
    no compute), so that shape propagation never touches the user's model or its statistics."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


def trace(model: nn.Module) -> tuple[torch.fx.GraphModule, dict[str, torch.fx.Node]]:
    check_module(model, "trace")
    tracer = _ModuleOutputTracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:  # noqa: BLE001 - torch.fx raises many kinds of errors
        raise ValueError(
            f"cannot trace {type(model).__name__} with torch.fx ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); receptive_field_of needs a "
            f"forward without data-dependent control flow: pass a traceable submodule, or "
            f"describe the layers to receptive_field()."
        ) from error
    return torch.fx.GraphModule(model, graph), tracer.module_outputs


def parse_input_shape(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) not in (2, 3, 4):
        raise ValueError(
            f"input_shape must be (H, W), (C, H, W) or (B, C, H, W), got {input_shape!r}."
        )
    for value in shape:
        check_int("every entry of input_shape", value, 1, f"input_shape {shape}")
    if len(shape) == 2:
        first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        channels = first_conv.in_channels if first_conv is not None else 3
        shape = (channels, *shape)
    if len(shape) == 3:
        shape = (1, *shape)
    return shape  # type: ignore[return-value]


@dataclass(frozen=True)
class _Analysis:
    gm: torch.fx.GraphModule
    module_outputs: dict[str, torch.fx.Node]
    shapes: dict[torch.fx.Node, Any]
    fields: dict[torch.fx.Node, Any]
    input_shape: tuple[int, int, int, int]


def _shapes(gm: torch.fx.GraphModule, shape: Sequence[int]) -> dict[torch.fx.Node, Any]:
    interpreter = _ShapeInterpreter(gm, garbage_collect_values=False)
    with torch.no_grad():
        interpreter.run(torch.empty(tuple(shape), device="meta"))
    return dict(interpreter.env)


def analyse(model: nn.Module, input_shape: Sequence[int]) -> _Analysis:
    shape = parse_input_shape(model, input_shape)
    # eval(): same shapes, and meta BatchNorm is much faster without batch statistics
    gm, module_outputs = trace(meta_copy(model).eval())
    shapes = _shapes(gm, shape)
    return _Analysis(gm, module_outputs, shapes, _propagate(gm, shapes), shape)


def unknown_node_message(node: str, names: list[str], model: nn.Module) -> str:
    close = difflib.get_close_matches(node, names, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if len(names) <= 25:
        listing = ", ".join(names)
    else:
        top = [n for n in names if "." not in n]
        listing = (
            f"{', '.join(top)} (top level; {len(names)} names in all, e.g. "
            f"'{names[len(names) // 2]}'; list them with "
            f"pspnet_edu.receptive_field.node_names(model))"
        )
    return (
        f"unknown node {node!r} in {type(model).__name__}.{hint} Valid nodes are the qualified "
        f"names of submodules called in forward: {listing}."
    )


def _smallest_square_input(analysis: _Analysis, target: torch.fx.Node) -> int | None:
    """Binary search for the smallest n such that an n x n input gives ``target`` >= 1 unit."""

    def works(n: int) -> bool:
        b, c = analysis.input_shape[:2]
        value = _shapes(analysis.gm, (b, c, n, n)).get(target)
        return is_feature_map(value) and min(value.shape[-2:]) >= 1

    low, high = 1, 4096
    if not works(high):
        return None
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid + 1, high)
    return low


def node_field(analysis: _Analysis, model: nn.Module, node: str) -> ReceptiveField2d:
    if not isinstance(node, str) or node not in analysis.module_outputs:
        names = list(analysis.module_outputs)
        raise ValueError(unknown_node_message(str(node), names, model))
    target = analysis.module_outputs[node]
    value = analysis.shapes[target]
    if isinstance(value, _Failed) or (is_feature_map(value) and min(value.shape[-2:]) < 1):
        _, _, h, w = analysis.input_shape
        smallest = _smallest_square_input(analysis, target)
        if smallest is None:
            detail = value.message if isinstance(value, _Failed) else "an empty output"
            raise ValueError(f"cannot compute the output shape of node {node!r}: {detail}.")
        raise ValueError(
            f"input {h}x{w} is too small for node {node!r}: its output would have no units. "
            f"The smallest square input that works is {smallest}x{smallest}; use a larger "
            f"input."
        )
    field = analysis.fields[target]
    if isinstance(field, _NoField):
        raise ValueError(f"node {node!r} has no receptive field: {field.reason}.")
    if field is None or not is_feature_map(value):
        raise ValueError(f"node {node!r} does not output a (B, C, H, W) feature map.")
    return field


def node_names(model: nn.Module) -> list[str]:
    """Names accepted as ``node``: submodules called in ``forward``, in the order they run.

    >>> node_names(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    ['0', '1']
    """
    check_module(model, "node_names")
    return list(trace(meta_copy(model))[1])


def receptive_field_of(
    model: nn.Module, input_shape: Sequence[int], node: str
) -> ReceptiveField2d:
    """Receptive field of the output of submodule ``node`` of any ``nn.Module``.

    The model is traced with torch.fx (on a meta-device copy: the model is never run or
    modified) and (r, j, p) are propagated through the real graph, per axis:

    - ``nn.Conv2d`` (stride, padding incl. ``"same"``/``"valid"``, dilation, non-square
      kernels), ``nn.MaxPool2d``/``nn.AvgPool2d`` (``ceil_mode`` only adds a last unit);
    - pointwise layers (BatchNorm, activations, dropout, ...) leave the field unchanged;
    - a residual addition or a concatenation along channels takes the largest field over its
      inputs, after checking that they are *aligned* (same jump, same centre of unit 0);
      misaligned paths raise a ValueError naming the node where they meet;
    - adaptive pooling is exact when its input is a multiple of its output (global pooling
      then sees every unit of its input); otherwise, and for ``flatten``, ``nn.Linear`` and
      interpolation, asking for the node raises a ValueError naming the operation.

    ``input_shape`` is (H, W), (C, H, W) or (B, C, H, W); the field itself does not depend on
    it (except through adaptive pooling), but the node's output must have at least one unit.
    A module called several times (torchvision's ``relu``) means its last call.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
    ...                     nn.Conv2d(8, 8, 3, padding=1))
    >>> rf = receptive_field_of(net, (32, 32), "2")
    >>> rf.size, rf.stride, rf.padding
    ((7, 7), (2, 2), (3, 3))
    """
    check_module(model, "receptive_field_of")
    return node_field(analyse(model, input_shape), model, node)
