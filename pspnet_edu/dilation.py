"""Dilated (à trous) convolutions: sizes, the à trous identity, and gridding.

What: a convolution with dilation d places its k taps d pixels apart, so it spans
d(k-1)+1 pixels with only k weights (Yu & Koltun, "Multi-Scale Context Aggregation by Dilated
Convolutions", ICLR 2016; the "algorithme à trous" of Holschneider et al. 1989, used for CNNs
by DeepLab, Chen et al. 2015/2017).

Why: PSPNet (Zhao et al. 2017, Sec. 3.3) uses a *dilated* ResNet: the strides of the last
two stages are replaced by dilation 2 and 4, so the feature map stays at 1/8 of the input while
the receptive field keeps growing as before (see ``receptive_field``). This module gives the
arithmetic (effective kernel, output size, 'same' padding), shows numerically that a dilated
convolution is an ordinary convolution on the d x d interleaved sub-images of its input (the
à trous identity, how TensorFlow's ``atrous_conv2d`` computes it), and computes the *gridding*
pattern of stacked dilations (Wang et al., "Understanding Convolution for Semantic
Segmentation", WACV 2018: rates such as (2, 2, 2) leave holes, "hybrid" rates such as
(1, 2, 5) do not).

Taught in notebooks/02_dilated_convolutions.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pspnet_edu.receptive_field import Layer, ReceptiveField, receptive_field


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}; pass 1 or more.")


def effective_kernel_size(kernel_size: int, dilation: int) -> int:
    """Span in pixels of a k-tap kernel with dilation d: d(k-1)+1.

    >>> effective_kernel_size(3, 1), effective_kernel_size(3, 2), effective_kernel_size(3, 4)
    (3, 5, 9)
    """
    _check_positive("kernel_size", kernel_size)
    _check_positive("dilation", dilation)
    return dilation * (kernel_size - 1) + 1


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis (torch's formula, floor mode):

        floor((size + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1

    >>> conv_output_size(224, 7, stride=2, padding=3)   # ResNet's stem: 224 -> 112
    112
    >>> conv_output_size(60, 3, padding=2, dilation=2)  # dilated 3x3 with 'same' padding
    60
    """
    _check_positive("size", size)
    _check_positive("stride", stride)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}.")
    span = effective_kernel_size(kernel_size, dilation)
    if size + 2 * padding < span:
        raise ValueError(
            f"input of size {size} (padded: {size + 2 * padding}) is smaller than the effective "
            f"kernel {span}; use an input of at least {span - 2 * padding} or more padding."
        )
    return (size + 2 * padding - span) // stride + 1


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding on each side that keeps the size at stride 1: (d(k-1)+1 - 1)/2 = d(k-1)/2.

    >>> same_padding(3), same_padding(3, dilation=2), same_padding(3, dilation=4)
    (1, 2, 4)
    """
    span = effective_kernel_size(kernel_size, dilation)
    if span % 2 == 0:
        raise ValueError(
            f"kernel {kernel_size} with dilation {dilation} spans {span} pixels, an even number: "
            f"the size is kept only with {span - 1} pixels of padding in total, which cannot be "
            f"split evenly between the two sides (torch's padding='same' puts the extra pixel "
            f"on the right/bottom). Use an odd kernel size, or pad asymmetrically with F.pad."
        )
    return (span - 1) // 2


def atrous_by_subsampling(
    x: torch.Tensor, weight: torch.Tensor, dilation: int, padding: int = 0
) -> torch.Tensor:
    """A dilated convolution computed as an *ordinary* convolution: the à trous identity.

    Output pixel (r + d*u, s + d*v) only reads input pixels congruent to (r, s) modulo d. So
    split the (zero-padded) input into its d*d interleaved sub-images x[r::d, s::d], convolve
    each with the undilated kernel, and interleave the results back (TensorFlow's
    ``space_to_batch`` -> conv -> ``batch_to_space``). Equals
    ``F.conv2d(x, weight, padding=padding, dilation=dilation)`` (stride 1, no bias).

    ``x``: (B, C, H, W); ``weight``: (C_out, C, k, k).

    >>> x, w = torch.randn(1, 2, 11, 9), torch.randn(3, 2, 3, 3)
    >>> y = atrous_by_subsampling(x, w, dilation=2, padding=2)
    >>> torch.allclose(y, F.conv2d(x, w, padding=2, dilation=2), atol=1e-5)
    True
    """
    _check_positive("dilation", dilation)
    if x.dim() != 4 or weight.dim() != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"expected x (B, C, H, W) and weight (C_out, C, k, k) with the same C, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}."
        )
    d, (kh, kw) = dilation, weight.shape[-2:]
    b, c = x.shape[:2]
    x = F.pad(x, (padding, padding, padding, padding))  # (B, C, Hp, Wp)
    hp, wp = x.shape[-2:]
    out_h, out_w = hp - d * (kh - 1), wp - d * (kw - 1)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"input {tuple(x.shape[-2:])} (after padding) is smaller than the effective kernel "
            f"{d * (kh - 1) + 1}x{d * (kw - 1) + 1}; use a larger input or more padding."
        )
    # Pad to multiples of d so that every sub-image has the same size; the extra zeros only
    # reach output pixels beyond (out_h, out_w), which are cropped below.
    hq, wq = -(-hp // d), -(-wp // d)
    x = F.pad(x, (0, wq * d - wp, 0, hq * d - hp))  # (B, C, hq*d, wq*d)
    sub = x.reshape(b, c, hq, d, wq, d).permute(3, 5, 0, 1, 2, 4)  # (d, d, B, C, hq, wq)
    sub = sub.reshape(d * d * b, c, hq, wq)  # the d*d sub-images, stacked into the batch
    y = F.conv2d(sub, weight)  # (d*d*B, C_out, hq-kh+1, wq-kw+1): ordinary convolution
    yh, yw = y.shape[-2:]
    y = y.reshape(d, d, b, -1, yh, yw).permute(2, 3, 4, 0, 5, 1)  # (B, C_out, yh, d, yw, d)
    y = y.reshape(b, -1, yh * d, yw * d)  # re-interleave: row u*d + r comes from sub-image r
    return y[:, :, :out_h, :out_w]  # (B, C_out, H_out, W_out)


def _gridding_profile(dilations: Sequence[int], kernel_size: int) -> torch.Tensor:
    """1-D count of paths from each input pixel to the centre output pixel of the stack."""
    _check_positive("kernel_size", kernel_size)
    if len(dilations) == 0:
        raise ValueError("dilations is empty; pass the rates of the stack, e.g. (1, 2, 5).")
    counts = torch.ones(1, 1, 1, dtype=torch.float64)  # (1, 1, L): one path to itself
    ones = torch.ones(1, 1, kernel_size, dtype=torch.float64)
    for d in dilations:
        _check_positive("every dilation", d)
        # full convolution: each pixel spreads to k taps d apart
        counts = F.conv1d(counts, ones, padding=d * (kernel_size - 1), dilation=d)
    return counts.flatten()


def gridding_pattern(
    dilations: Sequence[int], kernel_size: int = 3, size: int | None = None
) -> torch.Tensor:
    """How many paths lead from each input pixel to one output pixel of a stack of dilated
    k x k convolutions (stride 1); zeros are the "holes" of gridding (Wang et al. 2018).

    The result is an int64 (S, S) tensor centred on the output pixel, with S the stack's
    receptive field, or ``size`` (odd, at least S) to embed it in a larger zero canvas. Counts
    are exact up to 2**53 (float64 arithmetic), i.e. stacks of up to ~16 layers of 3x3.

    >>> gridding_pattern([2, 2])[0]  # two 3x3 convs with rate 2: only even offsets are seen
    tensor([1, 0, 2, 0, 3, 0, 2, 0, 1])
    >>> gridding_pattern([1, 2])[3].tolist()  # centre row: no holes
    [1, 1, 2, 1, 2, 1, 1]
    """
    profile = _gridding_profile(dilations, kernel_size).round().to(torch.int64)  # (S,)
    pattern = profile[:, None] * profile[None, :]  # (S, S): k x k kernels of ones are separable
    if size is not None:
        s = pattern.shape[0]
        _check_positive("size", size)
        if size < s or size % 2 == 0:
            raise ValueError(f"size must be odd and at least the receptive field {s}, got {size}.")
        margin = (size - s) // 2
        pattern = F.pad(pattern, (margin, margin, margin, margin))
    return pattern


def has_gridding(dilations: Sequence[int], kernel_size: int = 3) -> bool:
    """True when a stack of dilated convolutions leaves holes inside its receptive field.

    >>> has_gridding([2, 2, 2]), has_gridding([1, 2, 5]), has_gridding([1, 2, 9])
    (True, False, True)
    """
    return bool((_gridding_profile(dilations, kernel_size) == 0).any())


def receptive_field_of_stack(dilations: Sequence[int], kernel_size: int = 3) -> ReceptiveField:
    """Receptive field of stride-1 k x k convolutions with these rates and 'same' padding.

    >>> receptive_field_of_stack([1, 2, 5]).size
    17
    """
    layers = [
        Layer(kernel_size, 1, same_padding(kernel_size, d), d) for d in dilations
    ]
    if not layers:
        raise ValueError("dilations is empty; pass the rates of the stack, e.g. (1, 2, 5).")
    return receptive_field(layers)[-1]
