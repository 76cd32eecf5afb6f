"""`pspnet-edu rf MODEL [--node NAME] [--input HxW] [--dilated]`: receptive-field tables.

Prints the receptive field (size, jump, effective padding; Araujo et al. 2019) of the main
stages of a network, following its real graph (see ``pspnet_edu.receptive_field``).
Models are built with ``weights=None``: nothing is downloaded.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from pspnet_edu.cli.options import size_argument
from pspnet_edu.data.transforms import IMAGENET_INPUT
from pspnet_edu.pspnet import PRESETS, build_pspnet
from pspnet_edu.receptive_field import receptive_field_table

_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class _Entry:
    """How to build one network and which nodes its default table shows."""

    build: Callable[[bool], nn.Module]  # dilated -> model
    stages: Callable[[nn.Module], list[str]]  # model -> node names for the default table


def _torchvision_resnet(name: str) -> _Entry:
    def build(dilated: bool) -> nn.Module:
        # [False, True, True]: layer3 and layer4 trade their stride for dilation 2 and 4,
        # output stride 8, as in PSPNet (Zhao et al. 2017, Sec. 3.3) and torchvision's FCN.
        dilation = [False, True, True] if dilated else [False, False, False]
        build = getattr(torchvision.models, name)
        return build(weights=None, replace_stride_with_dilation=dilation)

    return _Entry(build, lambda model: ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"])


def _torchvision_plain(name: str) -> _Entry:
    def build(dilated: bool) -> nn.Module:
        if dilated:
            raise ValueError(
                f"--dilated applies to ResNets only ({', '.join(_RESNETS)}); {name} has no "
                f"replace_stride_with_dilation option. Drop --dilated."
            )
        return getattr(torchvision.models, name)(weights=None)

    def stages(model: nn.Module) -> list[str]:
        # every convolution and pooling layer of `features` (conv1_1 ... pool5)
        return [
            f"features.{i}"
            for i, layer in enumerate(model.features)
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d))
        ]

    return _Entry(build, stages)


def _course_backbone(preset: str) -> _Entry:
    def build(dilated: bool) -> nn.Module:
        if dilated:
            raise ValueError(
                f"pspnet-{preset} is dilated already (output stride 8, like every PSPNet "
                f"preset); drop --dilated."
            )
        # The backbone returns {"aux": layer3, "out": layer4}; the calculator follows its graph.
        return build_pspnet(preset).backbone

    def stages(model: nn.Module) -> list[str]:
        stem = [name for name in ("conv1", "conv2", "conv3") if hasattr(model, name)]
        return [*stem, "maxpool", "layer1", "layer2", "layer3", "layer4"]

    return _Entry(build, stages)


def _registry() -> dict[str, _Entry]:
    """Networks `pspnet-edu rf` knows: torchvision's and the backbones of the course's presets."""
    models = {name: _torchvision_resnet(name) for name in _RESNETS}
    models.update({name: _torchvision_plain(name) for name in ("vgg16", "alexnet")})
    models.update({f"pspnet-{p}": _course_backbone(p) for p in PRESETS})
    return models


def _build_model(name: str, dilated: bool) -> tuple[nn.Module, list[str]]:
    """The model called ``name`` (random weights) and the nodes of its default table."""
    models = _registry()
    if name not in models:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(models)}.")
    model = models[name].build(dilated)
    return model, models[name].stages(model)


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _print_table(rows: list, title: str) -> None:
    header = ("node", "op", "output", "RF", "jump", "padding")
    lines = []
    for row in rows:
        size = "-" if row.output_size is None else f"{row.output_size[0]}x{row.output_size[1]}"
        if row.field is None:
            lines.append((row.node, row.op, size, "-", "-", "-", row.note))
        else:
            f = row.field
            cells = (_pair_text(f.size), _pair_text(f.stride), _pair_text(f.padding))
            lines.append((row.node, row.op, size, *cells, row.note))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    print(title)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for line in lines:
        text = "  ".join(str(c).ljust(w) for c, w in zip(line, widths))
        print(f"{text}  {line[-1]}".rstrip() if line[-1] else text.rstrip())


def run(args: argparse.Namespace) -> int:
    height, width = args.input
    with torch.device("meta"):  # the calculator needs shapes only: no weights, no init time
        model, stages = _build_model(args.model, args.dilated)
    nodes = [args.node] if args.node else stages
    rows = receptive_field_table(model, (height, width), nodes)
    if args.node and rows[0].field is None:
        raise ValueError(rows[0].note)
    variant = " (dilated: replace_stride_with_dilation=[False, True, True])" if args.dilated else ""
    _print_table(rows, f"{args.model}{variant}, input {height}x{width}:")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `pspnet-edu rf`."""
    parser = subparsers.add_parser(
        "rf",
        help="receptive field per layer of a network",
        description=(
            "Print the receptive field size (RF), jump (effective stride) and effective padding "
            "of a network's main stages, following its real graph (Araujo et al., Distill "
            "2019). Models have random weights; nothing is downloaded."
        ),
    )
    parser.add_argument(
        "model",
        help=f"one of: {', '.join(_RESNETS)}, vgg16, alexnet, and the backbones of the "
        "course's presets pspnet-paper, pspnet-torchvision, pspnet-tiny",
    )
    parser.add_argument("--node", help="one submodule only, e.g. layer4 or features.30")
    parser.add_argument("--input", type=size_argument("--input"), default=IMAGENET_INPUT, metavar="HxW",
                        help=f"input size, HxW or N for a square (default {IMAGENET_INPUT[0]}x{IMAGENET_INPUT[1]}, "
                             "ImageNet's)")
    parser.add_argument(
        "--dilated",
        action="store_true",
        help="ResNets only: layer3/layer4 dilated instead of strided (output stride 8)",
    )
    parser.set_defaults(func=run)
