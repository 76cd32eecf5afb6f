"""PSPNet's training loss: pixel-wise cross-entropy plus alpha times the auxiliary loss.

What: ``total = CE(out, target) + aux_weight * CE(aux, target)``, both ignoring the label
``IGNORE_INDEX`` (255: Cityscapes' "void" trainId and padding).

Why: the auxiliary classifier on layer3 (the paper's "res4b22", ResNet-101's name for the last
block of the fourth stage; in ResNet-50 it is res4f) adds a deep-supervision signal that eases
the optimisation of the deep ResNet; it is discarded at test time. The paper finds
alpha = 0.4 best (Sec. 4, "Deep Supervision for ResNet-Based FCN", and Sec. 5.2, Table 2).

Taught in notebooks/05_pspnet.ipynb (the loss) and 09_ablations.ipynb (the alpha sweep).

Deviation: none; hszhao/semseg computes the same two CrossEntropyLoss(ignore_index=255) terms
(inside its model's ``forward``; here the model returns logits and the loss lives here). Logits
stored channels_last, as the trainer makes them, are read as rows of K scores, without a copy:
the same mean, its sums in another order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pspnet_edu.constants import IGNORE_INDEX  # 255: Cityscapes' "void" trainId, defined once

AUX_WEIGHT = 0.4  # paper Sec. 5.2, Table 2: alpha = 0.4 is best


def _check(logits: Tensor, target: Tensor, name: str, ignore_index: int) -> None:
    if target.dim() != 3 or logits.dim() != 4 or logits.shape[-2:] != target.shape[-2:] \
            or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"outputs[{name!r}] has shape {tuple(logits.shape)} (B, K, H, W) but the target has "
            f"shape {tuple(target.shape)}; the target must be (B, H, W) class indices of the "
            "same B, H and W"
        )
    if target.is_floating_point():
        raise ValueError(f"the target must hold integer class indices, got {target.dtype}; "
                         "use target.long()")
    num_classes = logits.shape[1]
    invalid = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if invalid.any():  # one reduction, no data-dependent shapes
        found = sorted(set(target[invalid].unique().tolist()))[:5]
        raise ValueError(
            f"target labels must be 0..{num_classes - 1} or {ignore_index} (ignore), found "
            f"{found}; Cityscapes labelIds must be mapped to trainIds first"
        )


def _cross_entropy(logits: Tensor, target: Tensor, ignore_index: int, weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over the labelled pixels; 0 if no pixel is labelled.

    ``F.cross_entropy`` averages over the pixels that are not ignored, which is 0/0 = NaN
    for a target that is all void (an unannotated frame): the trainer would take that for a
    diverged run. Without a labelled pixel the batch teaches nothing, so its loss is 0 and
    its gradient 0 (still NaN if the logits are: a diverging model is still caught).
    With class weights ``weight`` the mean is weighted: ``sum(w[y] * ce) / sum(w[y])``.
    """
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    weight = None if weight is None else weight.to(device=logits.device, dtype=logits.dtype)
    if _is_channels_last(logits):
        # Logits in channels_last (how the trainer runs the model) hold each pixel's K scores side by
        # side: the same mean over the rows of scores needs no copy to (B, K, H, W) and none of the
        # gradient back (2 x 20 MB a head at the demo's batch; 30.6 -> 19.3 ms a head with its
        # backward, benchmarks/bench_levers.py, AMD EPYC with AVX-512, 2 threads, 2026-12-07).
        # The same sum in another order: equal to the other path up to float rounding.
        rows = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])  # (B*H*W, K), a view
        return F.cross_entropy(rows, target.reshape(-1), weight=weight, ignore_index=ignore_index)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def _is_channels_last(x: Tensor) -> bool:
    """(B, K, H, W) stored as (B, H, W, K) (and not also contiguous, as when H = W = 1)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def pspnet_loss(
    outputs: dict[str, Tensor],
    target: Tensor,
    aux_weight: float = AUX_WEIGHT,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and its parts ``{"main": ..., "aux": ...}`` (each detached, for logging).

    ``outputs`` is what a PSPNet returns: ``{"out": (B, K, H, W), "aux": (B, K, H, W)}``;
    ``target`` is ``(B, H, W)`` trainIds. With ``aux_weight == 0`` the auxiliary output is
    not used at all (and may be absent); the part "aux" is reported whenever the model
    returned it. A target without a labelled pixel (all ``ignore_index``) gives a loss of 0,
    not NaN: it adds nothing to the gradient. ``class_weights`` (K,): weigh each pixel by its
    class in both terms (:func:`class_weights`; None, the paper's loss: every pixel alike).

    >>> import torch
    >>> logits = torch.zeros(1, 3, 2, 2)  # uniform over 3 classes: CE = log 3 = 1.0986
    >>> total, parts = pspnet_loss({"out": logits, "aux": logits}, torch.zeros(1, 2, 2).long())
    >>> round(total.item(), 4), round(parts["main"].item(), 4)
    (1.5381, 1.0986)
    """
    if "out" not in outputs:
        raise ValueError(
            f"outputs must contain 'out' (what a PSPNet returns), got keys {sorted(outputs)}"
        )
    _check(outputs["out"], target, "out", ignore_index)
    if class_weights is not None and class_weights.shape != (outputs["out"].shape[1],):
        raise ValueError(f"class_weights has shape {tuple(class_weights.shape)} but the model predicts "
                         f"{outputs['out'].shape[1]} classes; pass one weight per class")
    main = _cross_entropy(outputs["out"], target, ignore_index, class_weights)
    parts = {"main": main.detach()}
    total = main
    if "aux" in outputs:
        _check(outputs["aux"], target, "aux", ignore_index)
        aux = _cross_entropy(outputs["aux"], target, ignore_index, class_weights)
        parts["aux"] = aux.detach()
        if aux_weight:
            total = total + aux_weight * aux
    elif aux_weight:
        raise ValueError(
            f"aux_weight={aux_weight} but the model returned no 'aux' output (built with "
            "aux=False); use aux_weight=0 or build the model with aux=True"
        )
    return total, parts


# Deviation: the paper weighs every pixel alike. Class weights from the training split's pixel
# shares p_c (pspnet_edu.data.frequencies) give rare classes a larger part of the loss:
CLASS_WEIGHTINGS = {
    "none": "every pixel alike (the paper, hszhao/semseg)",
    "median-frequency": "median(p) / p_c (Eigen & Fergus, ICCV 2015; used by SegNet)",
    "sqrt-median-frequency": "sqrt(median(p) / p_c): the square root, a milder balance",
    "enet": "1 / ln(1.02 + p_c) (Paszke et al. 2016, ENet)",
}


def class_weights(frequencies: Tensor, method: str) -> Tensor | None:
    """One loss weight per class from the pixel shares ``frequencies`` (K,); None for ``"none"``.

    ``method`` is a key of :data:`CLASS_WEIGHTINGS`. The median is taken over the classes that
    occur; a class that never occurs gets weight 0 (it is never a target). The weights are scaled
    so that the average pixel of the split weighs 1 (the loss keeps its unweighted scale).

    >>> shares = torch.tensor([0.7, 0.2, 0.1, 0.0], dtype=torch.float64)
    >>> w = class_weights(shares, "median-frequency")  # 1/p_c, scaled: each class adds the same weight
    >>> [round(x, 3) for x in w.tolist()], round(float((w * shares).sum()), 6)
    ([0.476, 1.667, 3.333, 0.0], 1.0)
    >>> class_weights(shares, "none") is None
    True
    """
    if method not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {method!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}")
    if method == "none":
        return None
    p = frequencies.double()
    if p.dim() != 1 or not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or not math.isclose(float(p.sum()), 1.0,
                                                                                                     abs_tol=1e-6):
        raise ValueError("frequencies must be a vector of pixel shares >= 0 that sum to 1 "
                         "(pspnet_edu.data.frequencies.class_frequencies)")
    seen = p > 0
    if method == "enet":
        weights = 1.0 / torch.log(1.02 + p)
    else:
        weights = p[seen].median() / p.clamp_min(1e-12)
        if method == "sqrt-median-frequency":
            weights = weights.sqrt()
    weights = torch.where(seen, weights, torch.zeros_like(weights))
    return (weights / (weights * p).sum()).float()  # the mean weight of a pixel is 1
