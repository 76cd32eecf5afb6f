"""Convert checkpoints of the author's official PyTorch code (hszhao/semseg) to pspnet_edu.

What: :func:`semseg_to_pspnet_edu` renames the keys of a ``PSPNet(layers=50/101/152)``
checkpoint of hszhao/semseg (e.g. ``train_epoch_200.pth`` of the released Cityscapes models)
so that it loads strictly into ``build_pspnet("paper", num_classes=K, depth=D)``, and checks
every key and shape first, so that a checkpoint of another shape gets an error that says what
differs instead of a wall of missing keys.

Why: the "paper" preset is the same network as the author's code; loading his weights and
getting his logits is the proof (tests/test_convert.py compares the logits with a transcription
of his code). Taught in notebooks/05_pspnet.ipynb and 10_scaling_up.ipynb.

The renaming (official -> pspnet_edu):

    layer0.0 / .1 / .3 / .4 / .6 / .7   -> backbone.conv1 / bn1 / conv2 / bn2 / conv3 / bn3
    layer1 ... layer4                   -> backbone.layer1 ... backbone.layer4 (same inside)
    ppm.features.{i}.1 / .2             -> ppm.branches.{i}.conv / .bn
    cls.0 / .1 / .4                     -> head.conv / .bn / .classifier
    aux.0 / .1 / .4                     -> aux_head.conv / .bn / .classifier
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from pspnet_edu.backbone import RESNET_LAYOUTS
from pspnet_edu.pspnet import build_pspnet

_STEM = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "6": "conv3", "7": "bn3"}
_HEAD = {"0": "conv", "1": "bn", "4": "classifier"}
_PPM = {"1": "conv", "2": "bn"}
_LAYER3_BLOCKS = {6: 50, 23: 101, 36: 152}  # blocks in layer3 -> depth (He et al. 2016, Table 1)


def semseg_key(key: str) -> str:
    """The pspnet_edu name of one key of the official code (without ``module.``).

    >>> semseg_key("layer0.3.weight"), semseg_key("ppm.features.2.1.weight")
    ('backbone.conv2.weight', 'ppm.branches.2.conv.weight')
    >>> semseg_key("cls.4.bias"), semseg_key("layer3.5.downsample.1.running_mean")
    ('head.classifier.bias', 'backbone.layer3.5.downsample.1.running_mean')
    """
    patterns = [
        (r"layer0\.(\d+)\.(.+)", lambda m: f"backbone.{_STEM.get(m[1], m[1])}.{m[2]}"),
        (r"(layer[1-4]\..+)", lambda m: f"backbone.{m[1]}"),
        (r"ppm\.features\.(\d+)\.(\d+)\.(.+)",
         lambda m: f"ppm.branches.{m[1]}.{_PPM.get(m[2], m[2])}.{m[3]}"),
        (r"cls\.(\d+)\.(.+)", lambda m: f"head.{_HEAD.get(m[1], m[1])}.{m[2]}"),
        (r"aux\.(\d+)\.(.+)", lambda m: f"aux_head.{_HEAD.get(m[1], m[1])}.{m[2]}"),
    ]
    for pattern, rename in patterns:
        match = re.fullmatch(pattern, key)
        if match:
            return rename(match)
    return key  # unknown: reported as unexpected by semseg_to_pspnet_edu


def _list(keys: Any, limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def semseg_to_pspnet_edu(
    checkpoint: Mapping[str, Any],
    *,
    depth: int = 50,
    num_classes: int | None = None,
    aux: bool = True,
) -> dict[str, Tensor]:
    """A state dict for ``build_pspnet("paper", num_classes, depth=depth, aux=aux)``.

    ``checkpoint`` is what ``torch.load`` returns for a hszhao/semseg checkpoint (a dict with
    ``"state_dict"``, keys prefixed ``module.`` by DataParallel/DDP) or a bare state dict.
    ``aux=False`` accepts a checkpoint without the auxiliary classifier (``aux.*``), e.g. one
    pruned for inference; load it into ``build_pspnet("paper", aux=False)``.
    ``num_classes`` defaults to the checkpoint's own (rows of ``cls.4.weight``). BatchNorm
    ``num_batches_tracked`` counters, absent from checkpoints of PyTorch < 0.4.1, are filled
    with 0 (they only matter with ``momentum=None``).

    Raises ValueError naming what does not fit: the ResNet depth (counted from the blocks of
    layer3), the class count, missing or unexpected keys, or shapes.
    """
    state = _official_state(checkpoint)
    _check_depth(state, depth)
    found_classes = _check_classes(state, num_classes)
    converted = {semseg_key(k): v for k, v in state.items()}
    with torch.device("meta"):  # shapes only, no memory
        expected = build_pspnet("paper", num_classes=found_classes, depth=depth, aux=aux).state_dict()
    for key in set(expected) - set(converted):
        if key.endswith("num_batches_tracked"):
            converted[key] = torch.zeros((), dtype=torch.long)
    _check_keys_and_shapes(converted, expected, aux)
    return {k: converted[k] for k in expected}  # in the model's order


def _official_state(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The bare state dict of an official checkpoint, without DataParallel's ``module.`` prefix."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            "expected a hszhao/semseg checkpoint: a dict with 'state_dict' (name -> tensor) or "
            "a bare state dict; got "
            + (f"keys {_list(checkpoint)}" if isinstance(checkpoint, Mapping)
               else type(checkpoint).__name__)
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _check_depth(state: Mapping[str, Tensor], depth: int) -> None:
    """The ResNet depth, counted from the blocks of layer3, must be the one asked for."""
    if depth not in _LAYER3_BLOCKS.values():
        raise ValueError(f"the official PSPNet has depth 50, 101 or 152, got depth={depth}")
    blocks = len({m[1] for k in state if (m := re.match(r"layer3\.(\d+)\.", k))})
    expected_blocks = RESNET_LAYOUTS[depth][1][2]
    if blocks and blocks != expected_blocks:
        found = _LAYER3_BLOCKS.get(blocks)
        raise ValueError(
            f"the checkpoint's layer3 has {blocks} blocks "
            + (f"(ResNet-{found}), but ResNet-{depth} has {expected_blocks}: convert with "
               f"depth={found} and build the model with build_pspnet('paper', depth={found})"
               if found else f"which is no ResNet-50/101/152 (layer3 of ResNet-{depth} has "
               f"{expected_blocks})")
        )


def _check_classes(state: Mapping[str, Tensor], num_classes: int | None) -> int:
    """The number of classes of the final classifier (and that it is the one asked for)."""
    if "cls.4.weight" not in state:
        raise ValueError(
            f"the checkpoint has no final classifier 'cls.4.weight' (keys: {_list(state)}); "
            "it is not a hszhao/semseg PSPNet"
        )
    found_classes = state["cls.4.weight"].shape[0]
    if num_classes is not None and num_classes != found_classes:
        raise ValueError(
            f"the checkpoint has {found_classes} classes (cls.4.weight), not {num_classes}: "
            f"use num_classes={found_classes}, or fine-tune a new classifier"
        )
    return found_classes


def _check_keys_and_shapes(converted: Mapping[str, Tensor], expected: Mapping[str, Tensor], aux: bool) -> None:
    missing = set(expected) - set(converted)
    unexpected = set(converted) - set(expected)
    if missing or unexpected:
        hint = (" (the checkpoint has no auxiliary head: convert with aux=False and load into "
                "build_pspnet('paper', aux=False))"
                if any(k.startswith("aux_head.") for k in missing) else "")
        problems = [f"missing {len(missing)} key(s) {_list(missing)}{hint}"] if missing else []
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} key(s) {_list(unexpected)}")
        raise ValueError(
            f"the checkpoint does not match build_pspnet('paper', aux={aux}): " + "; ".join(problems)
        )
    wrong = [f"{k}: {tuple(converted[k].shape)} instead of {tuple(v.shape)}"
             for k, v in expected.items() if converted[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{len(wrong)} tensor(s) have the wrong shape: {_list(wrong, 4)}")
