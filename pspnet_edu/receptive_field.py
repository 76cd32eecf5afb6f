"""Receptive fields: theoretical (Araujo et al. 2019) and effective (Luo et al. 2016).

What: the *receptive field* (RF) of a unit is the interval of input pixels that can change its
value. Along one axis, three numbers describe the output of every layer of a CNN
(Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019, eqs. 1-3 of the "single-path" section, with the dilated kernel d(k-1)+1):

    r_l = r_{l-1} + (d_l (k_l - 1)) * j_{l-1}      size of the field (r_0 = 1)
    j_l = j_{l-1} * s_l                            jump / effective stride (j_0 = 1)
    p_l = p_{l-1} + pad_l * j_{l-1}                effective padding (p_0 = 0)

Output unit i then sees the input pixels [i*j - p, i*j - p + r - 1]; pixels outside
[0, size-1] are padding.

Why: PSPNet's argument (Zhao et al. 2017, Sec. 3.1) is that the *empirical* receptive field of a
deep ResNet is far smaller than its theoretical one, so the network needs the pyramid pooling
module to see global context. To check that claim we need (1) the theoretical field, computed
right on networks with several paths (residual additions, concatenations), and (2) the
effective field of Luo et al., "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks", NeurIPS 2016: the gradient of one output unit with respect to
the input.

Taught in notebooks/01_receptive_fields.ipynb.

API:
    receptive_field(layers)                       one axis, a layer list -> [ReceptiveField]
    receptive_field_of(model, input_shape, node)  any nn.Module, via torch.fx -> ReceptiveField2d
    receptive_field_table(model, input_shape)     one row per layer, for tables and the CLI
    effective_receptive_field(model, input_shape, node, linearize=False)
    sequential_receptive_field_naive(model)       the WRONG sequential walk, as a counter-example

Deviation: none from the paper; the conventions follow Araujo et al. (pixel indices start at 0,
fields are closed intervals, "padding" is the left/top padding, which is what torch uses for
odd effective kernels and for ``padding="same"``).
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------------
# One axis: the recurrences
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be an int, got {value!r}; pass a whole number.")
    if value < minimum:
        fix = "a positive int" if minimum == 1 else "0 or more"
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}; pass {fix}.")
    return value


@dataclass(frozen=True)
class Layer:
    """One axis of a convolution or pooling layer, as the recurrences see it.

    >>> Layer(3, stride=2, padding=1).effective_kernel_size
    3
    >>> Layer(3, padding=2, dilation=2).effective_kernel_size
    5
    """

    kernel_size: int
    stride: int = 1
    padding: int = 0  # left/top padding; torch pads both sides by this much
    dilation: int = 1

    def __post_init__(self) -> None:
        where = f"Layer{(self.kernel_size, self.stride, self.padding, self.dilation)}"
        _check_int("kernel_size", self.kernel_size, 1, where)
        _check_int("stride", self.stride, 1, where)
        _check_int("padding", self.padding, 0, where)
        _check_int("dilation", self.dilation, 1, where)

    @property
    def effective_kernel_size(self) -> int:
        """d(k-1)+1: the span of a dilated kernel (Yu & Koltun 2016)."""
        return self.dilation * (self.kernel_size - 1) + 1


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer, along one axis.

    ``size`` is r, ``stride`` is the jump j between neighbouring units measured in input
    pixels, ``padding`` is the effective padding p: unit i sees input pixels
    ``span(i) = (i*j - p, i*j - p + r - 1)``, both ends included.

    >>> rf = ReceptiveField(size=7, stride=2, padding=3)
    >>> rf.span(0), rf.span(1), rf.center(1)
    ((-3, 3), (-1, 5), 2.0)
    """

    size: int
    stride: int
    padding: int

    @classmethod
    def identity(cls) -> ReceptiveField:
        """The input itself: every pixel sees itself (r=1, j=1, p=0)."""
        return cls(size=1, stride=1, padding=0)

    def then(self, layer: Layer) -> ReceptiveField:
        """The field after applying ``layer`` on top of this one (Araujo et al. 2019)."""
        return ReceptiveField(
            size=self.size + (layer.effective_kernel_size - 1) * self.stride,
            stride=self.stride * layer.stride,
            padding=self.padding + layer.padding * self.stride,
        )

    def start(self, i: int) -> int:
        """First input pixel seen by output unit ``i`` (negative: inside the padding)."""
        return i * self.stride - self.padding

    def span(self, i: int) -> tuple[int, int]:
        """Input pixels (first, last), both included, seen by output unit ``i``."""
        return self.start(i), self.start(i) + self.size - 1

    def center(self, i: int) -> float:
        """Centre of the field of output unit ``i``, in input pixels."""
        return self.start(i) + (self.size - 1) / 2


@dataclass(frozen=True)
class ReceptiveField2d:
    """Receptive field of a 2-D feature map: one :class:`ReceptiveField` per axis.

    Kernels and strides may differ between height and width, so each axis is kept apart;
    ``size``, ``stride`` and ``padding`` return (height, width) pairs.

    >>> rf = ReceptiveField2d(ReceptiveField(7, 2, 3), ReceptiveField(5, 2, 2))
    >>> rf.size, rf.stride, rf.padding
    ((7, 5), (2, 2), (3, 2))
    >>> rf.span(1, 0)
    ((-1, 5), (-2, 2))
    >>> str(rf), str(ReceptiveField2d.square(ReceptiveField(212, 32, 90)))
    ('7x5', '212')
    """

    height: ReceptiveField
    width: ReceptiveField

    @classmethod
    def square(cls, field: ReceptiveField) -> ReceptiveField2d:
        return cls(height=field, width=field)

    @property
    def size(self) -> tuple[int, int]:
        return self.height.size, self.width.size

    @property
    def stride(self) -> tuple[int, int]:
        return self.height.stride, self.width.stride

    @property
    def padding(self) -> tuple[int, int]:
        return self.height.padding, self.width.padding

    def then(self, layer_h: Layer, layer_w: Layer) -> ReceptiveField2d:
        return ReceptiveField2d(self.height.then(layer_h), self.width.then(layer_w))

    def span(self, row: int, col: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) input pixels seen by output unit (row, col)."""
        return self.height.span(row), self.width.span(col)

    def center(self, row: int, col: int) -> tuple[float, float]:
        return self.height.center(row), self.width.center(col)

    def __str__(self) -> str:
        h, w = self.size
        return str(h) if h == w else f"{h}x{w}"


LayerLike = Layer | Sequence[int]


def _as_layer(layer: LayerLike, index: int) -> Layer:
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, Sequence) and not isinstance(layer, str) and len(layer) in (3, 4):
        return Layer(*layer)
    raise ValueError(
        f"layer {index}: expected Layer(...) or a (kernel, stride, padding[, dilation]) tuple, "
        f"got {layer!r}."
    )


def receptive_field(layers: Sequence[LayerLike]) -> list[ReceptiveField]:
    """Receptive field after each layer of a single-path stack, along one axis.

    ``layers`` holds ``Layer`` objects or ``(kernel, stride, padding[, dilation])`` tuples.
    Returns one :class:`ReceptiveField` per layer (the field of that layer's output).

    Three 3x3 convolutions see 7 pixels; a stride-2 layer doubles the growth of what follows:

    >>> [rf.size for rf in receptive_field([(3, 1, 1)] * 3)]
    [3, 5, 7]
    >>> receptive_field([(3, 2, 1), (3, 1, 1)])[-1]
    ReceptiveField(size=7, stride=2, padding=3)

    A dilated 3x3 convolution (d=2) acts like a 5x5 one:

    >>> receptive_field([(3, 1, 2, 2)])[-1].size
    5
    """
    fields = []
    field = ReceptiveField.identity()
    for index, layer in enumerate(layers):
        field = field.then(_as_layer(layer, index))
        fields.append(field)
    return fields


# --------------------------------------------------------------------------------------------
# Any nn.Module: trace the graph with torch.fx and propagate (r, j, p) through it
# --------------------------------------------------------------------------------------------


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


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def _conv_layers(conv: nn.Conv2d) -> tuple[Layer, Layer]:
    k, s, d = conv.kernel_size, conv.stride, conv.dilation
    if conv.padding == "valid":
        pad = (0, 0)
    elif conv.padding == "same":
        # torch pads d(k-1) in total and puts the smaller half first (left/top).
        pad = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
    else:
        pad = _pair(conv.padding)
    return tuple(Layer(k[a], s[a], pad[a], d[a]) for a in range(2))  # type: ignore[return-value]


def _pool_layers(pool: nn.MaxPool2d | nn.AvgPool2d) -> tuple[Layer, Layer]:
    # ceil_mode only adds a last output unit whose window runs past the input; it changes
    # the number of units, not r, j or p.
    k = _pair(pool.kernel_size)
    s = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    p = _pair(pool.padding)
    d = _pair(getattr(pool, "dilation", 1))
    return Layer(k[0], s[0], p[0], d[0]), Layer(k[1], s[1], p[1], d[1])


def _describe(node: torch.fx.Node, gm: torch.fx.GraphModule) -> str:
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


def _is_4d(value: Any) -> bool:
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
                f"the paths meeting at {_describe(node, gm)} are misaligned along the {axis} "
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
        return field.then(*_conv_layers(module))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return field.then(*_pool_layers(module))
    if isinstance(module, _POINTWISE_MODULES):
        return field
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        # Exact when the input is a multiple of the output: then it is an ordinary pooling
        # with kernel = stride = in/out (global pooling: kernel = the whole feature map).
        # Otherwise its bins have different sizes and overlap: no single (r, j, p).
        x, y = shapes.get(node.args[0]), shapes.get(node)
        if not (_is_4d(x) and _is_4d(y)):
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
            if _is_4d(value) and dim % 4 in (2, 3):
                fields[node] = _NoField(
                    f"{_describe(node, gm)} concatenates along a spatial axis; ask for a node "
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
            fields[node] = _NoField(f"{_describe(node, gm)} {_NOT_SPATIAL}")
        elif node.target is F.interpolate:
            fields[node] = _NoField(
                f"{_describe(node, gm)} interpolates: its units sit between input units, so "
                f"(r, j, p) do not apply; ask for a node before it"
            )
        else:
            fields[node] = _NoField(
                f"{_describe(node, gm)} is an operation this calculator does not know; use "
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


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers live on the meta device (no memory,
    no compute), so that shape propagation never touches the user's model or its statistics."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


def _trace(model: nn.Module) -> tuple[torch.fx.GraphModule, dict[str, torch.fx.Node]]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected an nn.Module, got {type(model).__name__}.")
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


def _parse_input_shape(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) not in (2, 3, 4):
        raise ValueError(
            f"input_shape must be (H, W), (C, H, W) or (B, C, H, W), got {input_shape!r}."
        )
    for value in shape:
        _check_int("every entry of input_shape", value, 1, f"input_shape {shape}")
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


def _analyse(model: nn.Module, input_shape: Sequence[int]) -> _Analysis:
    shape = _parse_input_shape(model, input_shape)
    # eval(): same shapes, and meta BatchNorm is much faster without batch statistics
    gm, module_outputs = _trace(_meta_copy(model).eval())
    shapes = _shapes(gm, shape)
    return _Analysis(gm, module_outputs, shapes, _propagate(gm, shapes), shape)


def _unknown_node_message(node: str, names: list[str], model: nn.Module) -> str:
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
        return _is_4d(value) and min(value.shape[-2:]) >= 1

    low, high = 1, 4096
    if not works(high):
        return None
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid + 1, high)
    return low


def _node_field(analysis: _Analysis, model: nn.Module, node: str) -> ReceptiveField2d:
    if not isinstance(node, str) or node not in analysis.module_outputs:
        names = list(analysis.module_outputs)
        raise ValueError(_unknown_node_message(str(node), names, model))
    target = analysis.module_outputs[node]
    value = analysis.shapes[target]
    if isinstance(value, _Failed) or (_is_4d(value) and min(value.shape[-2:]) < 1):
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
    if field is None or not _is_4d(value):
        raise ValueError(f"node {node!r} does not output a (B, C, H, W) feature map.")
    return field


def node_names(model: nn.Module) -> list[str]:
    """Names accepted as ``node``: submodules called in ``forward``, in the order they run.

    >>> node_names(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    ['0', '1']
    """
    return list(_trace(_meta_copy(model))[1])


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
    return _node_field(_analyse(model, input_shape), model, node)


@dataclass(frozen=True)
class ReceptiveFieldRow:
    """One row of :func:`receptive_field_table`; ``field`` is None when ``note`` says why."""

    node: str
    op: str
    output_size: tuple[int, int] | None  # (H_out, W_out) of the node's feature map
    field: ReceptiveField2d | None
    note: str = ""


def receptive_field_table(
    model: nn.Module, input_shape: Sequence[int], nodes: Sequence[str] | None = None
) -> list[ReceptiveFieldRow]:
    """One row per node: name, op, output size, field (r, j, p per axis), and a note.

    ``nodes=None`` lists every leaf layer in the order it runs; otherwise the given names
    (containers such as ``"layer3"`` included). Nodes without a field get ``field=None`` and a
    note saying why, instead of an error, so that a whole network can be tabulated.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.MaxPool2d(2), nn.Flatten())
    >>> [(row.node, row.op, row.output_size, str(row.field)) for row in
    ...  receptive_field_table(net, (8, 8))]
    [('0', 'Conv2d', (6, 6), '3'), ('1', 'MaxPool2d', (3, 3), '4'), ('2', 'Flatten', None, 'None')]
    """
    analysis = _analyse(model, input_shape)
    if nodes is None:
        leaves = {n.target for n in analysis.gm.graph.nodes if n.op == "call_module"}
        nodes = [name for name in analysis.module_outputs if name in leaves]
    rows = []
    for name in nodes:
        if name not in analysis.module_outputs:
            raise ValueError(_unknown_node_message(name, list(analysis.module_outputs), model))
        target = analysis.module_outputs[name]
        op = type(model.get_submodule(name)).__name__
        value = analysis.shapes[target]
        size = tuple(value.shape[-2:]) if _is_4d(value) else None
        try:
            field, note = _node_field(analysis, model, name), ""
        except ValueError as error:
            field, note = None, str(error)
        if field is not None:
            (top, bottom), (left, right) = field.span(0, 0)
            _, _, h, w = analysis.input_shape
            if size == (1, 1) and top <= 0 and left <= 0 and bottom >= h - 1 and right >= w - 1:
                note = "global: its unit sees the whole input"
        rows.append(ReceptiveFieldRow(name, op, size, field, note))  # type: ignore[arg-type]
    return rows


def sequential_receptive_field_naive(model: nn.Module) -> ReceptiveField:
    """WRONG ON PURPOSE: the "walk every layer in order" formula of popular PyPI tools.

    A teaching counter-example for notebook 01; never use it for an answer. It applies the
    recurrences to every Conv2d/MaxPool2d/AvgPool2d of ``model.modules()`` in registration
    order (height axis), as if the network were one chain. On a ResNet this counts the 1x1
    ``downsample`` shortcut as if it followed the main path, so each stride-2 stage multiplies
    the jump by 4 instead of 2, and every layer after it grows the field far too fast.
    Use :func:`receptive_field_of`, which follows the real graph.

    >>> chain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))
    >>> sequential_receptive_field_naive(chain)  # right on a true chain only
    ReceptiveField(size=5, stride=1, padding=2)
    """
    field = ReceptiveField.identity()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            field = field.then(_conv_layers(module)[0])
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            field = field.then(_pool_layers(module)[0])
    return field


# --------------------------------------------------------------------------------------------
# Effective receptive field (Luo et al. 2016)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """Rows top..bottom and columns left..right, all included."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def size(self) -> tuple[int, int]:
        return self.bottom - self.top + 1, self.right - self.left + 1


@dataclass(frozen=True, eq=False)
class EffectiveReceptiveField:
    """Result of :func:`effective_receptive_field`."""

    gradient: torch.Tensor  # (H, W) float64: |d out[centre] / d input|, summed over B and C
    unit: tuple[int, int]  # (row, col) of the output unit whose gradient this is
    theoretical: ReceptiveField2d  # from receptive_field_of
    theoretical_box: Box  # the unit's theoretical field, clipped to the input
    support_box: Box | None  # bounding box of the non-zero gradient (None: all zero)
    mass: float  # fraction of the gradient mass used for effective_area_ratio
    # smallest number of pixels holding `mass` of the gradient, divided by the area of
    # theoretical_box (Luo et al.: much less than 1, and shrinking with depth)
    effective_area_ratio: float


_LINEAR_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Hardswish, nn.Hardtanh,
)


def _linearize(work: nn.Module) -> None:
    """Make every path of ``work`` (our own copy) linear with positive coefficients.

    Conv weights become 1/fan_in (an average, so activations keep their scale) with zero bias;
    BatchNorm and ReLU-like activations become identities; max-pooling becomes average pooling
    with the same geometry. Every input pixel inside the theoretical field then reaches the
    output through at least one path of positive weights, and no pixel outside it does, so the
    support of the gradient is exactly the theoretical field (Luo et al. 2016, Sec. 2).
    """
    replacements = []
    for name, module in work.named_modules():
        if isinstance(module, nn.Conv2d):
            with torch.no_grad():
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, (nn.modules.batchnorm._BatchNorm, *_LINEAR_ACTIVATIONS)):
            replacements.append((name, nn.Identity()))
        elif isinstance(module, nn.MaxPool2d):
            if _pair(module.dilation) != (1, 1) or module.return_indices:
                raise ValueError(
                    f"cannot linearize '{name}' (MaxPool2d with dilation or return_indices): "
                    f"average pooling has no such options; use linearize=False."
                )
            replacements.append((name, nn.AvgPool2d(
                module.kernel_size, module.stride, module.padding, module.ceil_mode,
                count_include_pad=True,
            )))
        elif isinstance(module, nn.AdaptiveMaxPool2d):
            replacements.append((name, nn.AdaptiveAvgPool2d(module.output_size)))
    for name, new in replacements:
        parent_name, _, child = name.rpartition(".")
        setattr(work.get_submodule(parent_name), child, new)


def _truncate(gm: torch.fx.GraphModule, target: torch.fx.Node) -> None:
    """Make ``target`` the graph's output and drop what only later layers need."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    output.args = (target,)
    gm.graph.eliminate_dead_code()
    gm.recompile()


def _copy_up_to(model: nn.Module, node: str) -> nn.Module:
    """A deep copy of ``model`` with real weights only for the layers that run before ``node``;
    the others get meta-device placeholders (VGG-16's classifier alone holds 124M parameters)."""
    gm, module_outputs = _trace(_meta_copy(model))
    _truncate(gm, module_outputs[node])
    used = {n.target for n in gm.graph.nodes if n.op in ("call_module", "get_attr")}
    memo: dict[int, Any] = {}
    for name, t in itertools.chain(model.named_parameters(), model.named_buffers()):
        if name not in used and name.rpartition(".")[0] not in used:
            meta = torch.empty_like(t, device="meta")
            is_parameter = isinstance(t, nn.Parameter)
            memo[id(t)] = nn.Parameter(meta, t.requires_grad) if is_parameter else meta
    return copy.deepcopy(model, memo)


def _linearize_graph(gm: torch.fx.GraphModule) -> None:
    """Remove functional ReLUs (F.relu, torch.relu, x.relu()) from a traced graph."""
    relus = {F.relu, F.relu_, torch.relu, torch.relu_}
    for node in list(gm.graph.nodes):
        if node.target in relus or (node.op == "call_method" and node.target in ("relu", "relu_")):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        elif node.target in (F.max_pool2d, torch.max_pool2d):
            raise ValueError(
                f"cannot linearize {_describe(node, gm)}: functional max-pooling cannot be "
                f"swapped for average pooling; use nn.MaxPool2d or linearize=False."
            )
    gm.recompile()


def effective_receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    node: str,
    *,
    linearize: bool = False,
    inputs: torch.Tensor | None = None,
    mass: float = 0.95,  # Luo et al. measure the area holding most of the gradient mass
    seed: int = 0,
) -> EffectiveReceptiveField:
    """Gradient-based effective receptive field of the centre unit of ``node`` (Luo et al. 2016).

    Puts gradient 1 at the centre output unit of the node's feature map (every channel),
    back-propagates to the input and returns |gradient| summed over batch and channels, as an
    (H, W) float64 map. The model is deep-copied, cast to float64 and put in eval mode
    (BatchNorm frozen); the user's model is not touched.

    ``inputs``: a (B, C, H, W) batch (the map is summed over it: pass several images to average
    as Luo et al. do); default one standard-normal image drawn with ``seed``.
    ``linearize=True`` replaces the copy's convolutions by positive averaging filters, removes
    BatchNorm and ReLUs and turns max- into average-pooling. The support of the gradient is then
    exactly the theoretical field of that unit, clipped to the input: choose a node and input
    size for which the field fits inside the input to see its full size. The centre unit is
    ((H_out - 1) // 2, (W_out - 1) // 2).

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    >>> erf = effective_receptive_field(net, (1, 15, 15), "2", linearize=True)
    >>> erf.support_box.size == erf.theoretical.size == (5, 5)
    True
    """
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}; e.g. 0.95.")
    theoretical = receptive_field_of(model, input_shape, node)
    shape = _parse_input_shape(model, input_shape)
    if inputs is None:
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(shape, generator=generator, dtype=torch.float64)
    elif tuple(inputs.shape[1:]) != shape[1:] or inputs.dim() != 4:
        raise ValueError(
            f"inputs of shape {tuple(inputs.shape)} do not match input_shape {shape[1:]}; pass "
            f"a (B, {shape[1]}, {shape[2]}, {shape[3]}) tensor."
        )

    work = _copy_up_to(model, node)
    if linearize:
        _linearize(work)
    work = work.to(torch.float64).eval().requires_grad_(False)
    gm, module_outputs = _trace(work)
    _truncate(gm, module_outputs[node])
    if linearize:
        _linearize_graph(gm)

    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    x = inputs.detach().to(device, torch.float64).requires_grad_(True)  # (B, C, H, W)
    y = gm(x)  # (B, C', H_out, W_out)
    row, col = (y.shape[-2] - 1) // 2, (y.shape[-1] - 1) // 2
    y[:, :, row, col].sum().backward()
    gradient = x.grad.abs().sum(dim=(0, 1)).cpu()  # (H, W)

    _, _, h, w = shape
    (top, bottom), (left, right) = theoretical.span(row, col)
    theoretical_box = Box(max(top, 0), max(left, 0), min(bottom, h - 1), min(right, w - 1))
    nonzero = gradient > 0
    if nonzero.any():
        rows = nonzero.any(dim=1).nonzero().flatten()
        cols = nonzero.any(dim=0).nonzero().flatten()
        support = Box(int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
        values = gradient.flatten().sort(descending=True).values
        cumulative = values.cumsum(0)
        needed = int((cumulative < mass * cumulative[-1]).sum()) + 1
        area = theoretical_box.size[0] * theoretical_box.size[1]
        ratio = needed / area
    else:
        support, ratio = None, math.nan
    return EffectiveReceptiveField(
        gradient=gradient.detach(),
        unit=(row, col),
        theoretical=theoretical,
        theoretical_box=theoretical_box,
        support_box=support,
        mass=mass,
        effective_area_ratio=ratio,
    )
