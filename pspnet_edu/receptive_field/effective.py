"""The effective receptive field: the gradient of one output unit w.r.t. the input (Luo et al. 2016).

Luo, Li, Urtasun & Zemel, "Understanding the Effective Receptive Field in Deep Convolutional
Neural Networks", NeurIPS 2016: the input pixels that actually move a unit are far fewer than
its theoretical field, and concentrated in its centre (a Gaussian-like bump). PSPNet's argument
for the pyramid pooling module (Zhao et al. 2017, Sec. 3.2) rests on that remark.

Taught in notebooks/01_receptive_fields.ipynb.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from pspnet_edu.receptive_field.graph import (
    describe_node,
    meta_copy,
    parse_input_shape,
    receptive_field_of,
    trace,
)
from pspnet_edu.receptive_field.recurrence import ReceptiveField2d, axis_pair, check_module


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

    def radius(self, mass: float = 0.9) -> float:
        """Radius in input pixels of the smallest disc around the unit's centre holding ``mass`` of the gradient.

        The distance is measured from the centre of the unit's theoretical field to each pixel's
        centre; the radius is that of the farthest pixel needed. A measure of how far the unit
        reads that grows with training if the network learns to use distant pixels.

        >>> from pspnet_edu.receptive_field import ReceptiveField
        >>> g = torch.zeros(5, 5, dtype=torch.float64); g[2, 2], g[2, 4] = 3.0, 1.0
        >>> erf = _summarise(g, (2, 2), ReceptiveField2d.square(ReceptiveField.identity()), (1, 1, 5, 5), 0.9)
        >>> erf.radius(0.75), erf.radius(0.9)
        (0.0, 2.0)
        """
        if not 0.0 < mass <= 1.0:
            raise ValueError(f"mass must be in (0, 1], got {mass}; e.g. 0.9.")
        total = float(self.gradient.sum())
        if total == 0.0:
            return math.nan
        h, w = self.gradient.shape
        cy, cx = self.theoretical.center(*self.unit)
        rows = torch.arange(h, dtype=torch.float64).view(-1, 1)
        cols = torch.arange(w, dtype=torch.float64).view(1, -1)
        distance = ((rows - cy) ** 2 + (cols - cx) ** 2).sqrt().flatten()
        order = distance.argsort(stable=True)
        cumulative = self.gradient.flatten()[order].cumsum(0)
        needed = int((cumulative < mass * total * (1 - 1e-12)).sum())  # pixels before the one that reaches it
        return float(distance[order][min(needed, len(order) - 1)])


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
            if axis_pair(module.dilation) != (1, 1) or module.return_indices:
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
    gm, module_outputs = trace(meta_copy(model))
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
                f"cannot linearize {describe_node(node, gm)}: functional max-pooling cannot be "
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
    check_module(model, "effective_receptive_field")
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}; e.g. 0.95.")
    theoretical = receptive_field_of(model, input_shape, node)
    shape = parse_input_shape(model, input_shape)
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
    gm, module_outputs = trace(work)
    _truncate(gm, module_outputs[node])
    if linearize:
        _linearize_graph(gm)

    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    x = inputs.detach().to(device, torch.float64).requires_grad_(True)  # (B, C, H, W)
    y = gm(x)  # (B, C', H_out, W_out)
    row, col = (y.shape[-2] - 1) // 2, (y.shape[-1] - 1) // 2
    y[:, :, row, col].sum().backward()
    gradient = x.grad.abs().sum(dim=(0, 1)).cpu()  # (H, W)

    return _summarise(gradient.detach(), (row, col), theoretical, shape, mass)


def _summarise(gradient: torch.Tensor, unit: tuple[int, int], theoretical: ReceptiveField2d,
               shape: tuple[int, int, int, int], mass: float) -> EffectiveReceptiveField:
    """The boxes and the area ratio of a gradient map (see :class:`EffectiveReceptiveField`)."""
    _, _, h, w = shape
    (top, bottom), (left, right) = theoretical.span(*unit)
    theoretical_box = Box(max(top, 0), max(left, 0), min(bottom, h - 1), min(right, w - 1))
    nonzero = gradient > 0
    if not nonzero.any():
        return EffectiveReceptiveField(gradient, unit, theoretical, theoretical_box, None, mass, math.nan)
    rows = nonzero.any(dim=1).nonzero().flatten()
    cols = nonzero.any(dim=0).nonzero().flatten()
    support = Box(int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
    cumulative = gradient.flatten().sort(descending=True).values.cumsum(0)
    needed = int((cumulative < mass * cumulative[-1]).sum()) + 1  # pixels holding `mass` of the gradient
    ratio = needed / (theoretical_box.size[0] * theoretical_box.size[1])
    return EffectiveReceptiveField(gradient, unit, theoretical, theoretical_box, support, mass, ratio)
