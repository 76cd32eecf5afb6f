"""Receptive fields along one axis: the recurrences of Araujo et al. (Distill 2019).

What: the *receptive field* (RF) of a unit is the interval of input pixels that can change its
value. Along one axis, three numbers describe the output of every layer of a CNN
(Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural Networks",
Distill 2019, eqs. 1-3 of the "single-path" section, with the dilated kernel d(k-1)+1):

    r_l = r_{l-1} + (d_l (k_l - 1)) * j_{l-1}      size of the field (r_0 = 1)
    j_l = j_{l-1} * s_l                            jump / effective stride (j_0 = 1)
    p_l = p_{l-1} + pad_l * j_{l-1}                effective padding (p_0 = 0)

Output unit i then sees the input pixels [i*j - p, i*j - p + r - 1]; pixels outside
[0, size-1] are padding. This module holds the recurrences for a single chain of layers
(:func:`receptive_field`), the (height, width) layers of a ``Conv2d`` or a pooling module,
and the wrong "walk every module in order" shortcut as a counter-example.

Taught in notebooks/01_receptive_fields.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn


def check_int(name: str, value: Any, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be an int, got {value!r}; pass a whole number.")
    if value < minimum:
        fix = "a positive int" if minimum == 1 else "0 or more"
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}; pass {fix}.")
    return value


def check_module(model: Any, caller: str) -> None:
    """Raise a ValueError that says how to wrap ``model`` unless it is an ``nn.Module`` instance.

    >>> check_module(lambda x: x, "node_names")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: node_names needs an nn.Module (its submodules are the nodes), got the function '<lambda>'; ...
    """
    if isinstance(model, nn.Module):
        return
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise ValueError(f"{caller} needs an nn.Module instance, got the class {model.__name__}; "
                         f"build one first, e.g. {model.__name__}(...)")
    got = (f"the function {getattr(model, '__name__', repr(model))!r}" if callable(model)
           else f"a {type(model).__name__}")
    raise ValueError(
        f"{caller} needs an nn.Module (its submodules are the nodes), got {got}; wrap a function in a "
        "small module whose layers are submodules: class Net(nn.Module) with the layers set in __init__ "
        "and forward(self, x) calling them, or nn.Sequential(layer, layer, ...)"
    )



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
        check_int("kernel_size", self.kernel_size, 1, where)
        check_int("stride", self.stride, 1, where)
        check_int("padding", self.padding, 0, where)
        check_int("dilation", self.dilation, 1, where)

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


def axis_pair(value: int | Sequence[int]) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` -> ``(3, 5)``: a layer argument as (height, width)."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def conv_layers(conv: nn.Conv2d) -> tuple[Layer, Layer]:
    """The (height, width) :class:`Layer` of a ``Conv2d``, padding ``"same"``/``"valid"`` included."""
    k, s, d = conv.kernel_size, conv.stride, conv.dilation
    if conv.padding == "valid":
        pad = (0, 0)
    elif conv.padding == "same":
        # torch pads d(k-1) in total and puts the smaller half first (left/top).
        pad = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
    else:
        pad = axis_pair(conv.padding)
    return tuple(Layer(k[a], s[a], pad[a], d[a]) for a in range(2))  # type: ignore[return-value]


def pool_layers(pool: nn.MaxPool2d | nn.AvgPool2d) -> tuple[Layer, Layer]:
    """The (height, width) :class:`Layer` of a ``MaxPool2d`` or ``AvgPool2d``."""
    # ceil_mode only adds a last output unit whose window runs past the input; it changes
    # the number of units, not r, j or p.
    k = axis_pair(pool.kernel_size)
    s = axis_pair(pool.stride if pool.stride is not None else pool.kernel_size)
    p = axis_pair(pool.padding)
    d = axis_pair(getattr(pool, "dilation", 1))
    return Layer(k[0], s[0], p[0], d[0]), Layer(k[1], s[1], p[1], d[1])


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
            field = field.then(conv_layers(module)[0])
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            field = field.then(pool_layers(module)[0])
    return field
