"""Options that several commands share, with their choices and defaults read from the library.

The training options (``train``, ``demo``, ``ablate``) default to ``None``, meaning "keep the
value of the command's base configuration" (``TrainConfig()`` for ``train``, ``DEMO_RECIPE``
for ``demo``); :func:`config_from_args` turns the parsed namespace into a ``TrainConfig``. The
help texts quote the base's values, so they can never disagree with what runs; the other
defaults are the library functions' own (:func:`default_of`). An option that a command would
ignore is hidden from its help and refused with one line by :func:`refuse_given`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

import torch

from pspnet_edu.constants import NUM_CLASSES
from pspnet_edu.data.synthetic import ensure_synthetic
from pspnet_edu.files import parse_size
from pspnet_edu.inference import INFERENCE_PRECISIONS, MAX_INFERENCE_SCALE, evaluate, predict_probs, prepare_for_inference
from pspnet_edu.loss import CLASS_WEIGHTINGS
from pspnet_edu.ppm import POOLINGS
from pspnet_edu.pspnet import PRESETS, PSPNetConfig, preset_config
from pspnet_edu.training import CHECKPOINT_NAME, PRECISIONS, TrainConfig, load_checkpoint, model_from_checkpoint
from pspnet_edu.training.checkpoint import saved_model_config
from pspnet_edu.training.config import MAX_SEED


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (e.g. a memory budget in GB)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def inference_scale(text: str) -> float:
    """A multi-scale factor: a finite number in (0, MAX_INFERENCE_SCALE]; a file name gets its own hint."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes numbers, and {text!r} is not one; put the images before --scales (or end the list with --)"
        ) from None
    if not (math.isfinite(value) and 0 < value <= MAX_INFERENCE_SCALE):
        raise argparse.ArgumentTypeError(f"each scale must be a number in (0, {MAX_INFERENCE_SCALE:g}], got {text!r}; "
                                         "semseg uses 0.5 0.75 1.0 1.25 1.5 1.75")
    return value


def seed_value(text: str) -> int:
    """A random seed: an integer from 0 to MAX_SEED (torch refuses larger ones deep in the run)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED} (2**63 - 1), got {text!r}")
    return value


def device_name(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked before any work, not after loading the data)."""
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or mps")
    return text


def size_argument(what: str) -> Callable[[str], tuple[int, int]]:
    """An argparse ``type`` for one size (``HxW`` or ``N``), through :func:`pspnet_edu.files.parse_size`."""
    def parse(text: str) -> tuple[int, int]:
        try:
            return parse_size(text, what)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def default_of(function: Callable[..., Any], parameter: str) -> Any:
    """The library's own default for ``parameter`` of ``function``: an option's default, never restated.

    >>> default_of(predict_probs, "scales")
    (1.0,)
    """
    return inspect.signature(function).parameters[parameter].default


def refuse_given(args: argparse.Namespace, reasons: Mapping[str, str]) -> None:
    """A ValueError for the first option of ``reasons`` (dest -> why it is ignored and what to do) that was given."""
    for dest, reason in reasons.items():
        if getattr(args, dest) not in (None, False):
            raise ValueError(f"--{dest.replace('_', '-')} {reason}")


def _help(text: str, dest: str, hidden: Collection[str]) -> str:
    return argparse.SUPPRESS if dest in hidden else text


def preset_name(config: TrainConfig) -> str | None:
    """The preset a config's model was built from, if it is one unchanged (for help texts)."""
    return next((name for name, preset in PRESETS.items()
                 if dataclasses.replace(preset, num_classes=config.model.num_classes) == config.model), None)


def add_training_options(parser: argparse.ArgumentParser, base: TrainConfig, alpha: bool = False,
                         hidden: Collection[str] = ()) -> None:
    """The options shared by `train`, `demo` and `ablate` (``alpha``: also --alpha); unset ones keep ``base``'s.

    ``hidden``: the dests of options the command refuses (:func:`refuse_given`), left out of its help.
    """
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help=f"model preset (default: {preset_name(base) or 'the base configuration'})")
    parser.add_argument("--no-ppm", action="store_true",
                        help=_help("the dilated-FCN baseline: no pyramid pooling", "no_ppm", hidden))
    parser.add_argument("--bins", type=positive_int, nargs="+", default=None,
                        help=_help(f"pyramid bins (default {' '.join(map(str, base.model.bins))})", "bins", hidden))
    parser.add_argument("--pooling", choices=POOLINGS, default=None,
                        help=_help(f"pyramid pooling (default {base.model.pooling})", "pooling", hidden))
    channels = base.model.ppm_channels
    parser.add_argument("--ppm-channels", type=positive_int, default=None,
                        help=_help(f"channels of each pyramid level (default "
                                   f"{channels if channels else 'the backbone channels / the number of bins'}; "
                                   "paper: 1/N of them)", "ppm_channels", hidden))
    parser.add_argument("--data", default=None,
                        help="dataset folder in the Cityscapes layout (default: the synthetic set, generated on first use)")
    parser.add_argument("--val-split", default=None,
                        help=f"split to evaluate on (default {base.val_split}; 'none': no evaluation)")
    parser.add_argument("--iters", type=positive_int, default=None, help=f"training iterations (default {base.iters})")
    parser.add_argument("--batch-size", type=positive_int, default=None, help=f"global batch size (default {base.batch_size})")
    parser.add_argument("--crop", type=size_argument("--crop"), metavar="HxW", default=None,
                        help=f"training crop, HxW or N for a square (default {base.crop[0]}x{base.crop[1]})")
    parser.add_argument("--scale", type=finite_float, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help=f"random resize range (default {base.scale[0]:g} {base.scale[1]:g}; the paper's is 0.5 2.0)")
    parser.add_argument("--lr", type=finite_float, default=None, help=f"base learning rate (default {base.lr:g}; paper 0.01)")
    parser.add_argument("--head-lr-mult", type=finite_float, default=None,
                        help=f"the PPM's and the heads' learning rate as a multiple of --lr (default "
                             f"{base.head_lr_mult:g}; hszhao/semseg: 10, for a pretrained backbone)")
    if alpha:
        parser.add_argument("--alpha", type=finite_float, default=None,
                            help=f"auxiliary loss weight (default {base.alpha:g}; paper 0.4, Table 2)")
    parser.add_argument("--class-weighting", choices=list(CLASS_WEIGHTINGS), default=None,
                        help=f"per-class loss weights from the training split's pixel shares (default "
                             f"{base.class_weighting}; the paper: none)")
    parser.add_argument("--seed", type=seed_value, default=None,
                        help=_help(f"random seed (default {base.seed})", "seed", hidden))
    parser.add_argument("--device", type=device_name, default=None, help=f"cpu, cuda, cuda:N or mps (default {base.device})")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help=f"fp32, bf16 autocast (CPU/CUDA) or fp16 AMP (CUDA) (default {base.precision})")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help=f"NHWC activations (default {'on' if base.channels_last else 'off'})")
    parser.add_argument("--num-workers", type=int, default=None, help=f"data-loading processes (default {base.num_workers})")
    parser.add_argument("--eval-every", type=int, default=None,
                        help=f"evaluate every N iterations (default {base.eval_every}; 0: at the end only)")
    add_threads_option(parser)


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by `evaluate` and `predict`."""
    parser.add_argument("--checkpoint", required=True, help=f"RUN_DIR/{CHECKPOINT_NAME} written by `pspnet-edu train`")
    device, precision, scales = default_of(evaluate, "device"), default_of(prepare_for_inference, "precision"), \
        default_of(predict_probs, "scales")
    parser.add_argument("--device", type=device_name, default=device, help=f"cpu, cuda, cuda:N or mps (default {device})")
    parser.add_argument("--precision", choices=INFERENCE_PRECISIONS, default=precision,
                        help=f"fp32, or bf16 autocast (fast on CPUs with AVX512-BF16/AMX and on recent GPUs) "
                             f"(default {precision})")
    parser.add_argument("--sliding", action="store_true", help="sliding-window inference (stride 2/3 of the crop)")
    parser.add_argument("--crop", type=size_argument("--crop"), metavar="HxW", default=None,
                        help="sliding-window size, HxW or N for a square (default: the training crop)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored image")
    parser.add_argument("--scales", type=inference_scale, nargs="+", default=list(scales),
                        help=f"multi-scale inference, e.g. 0.5 0.75 1.0 1.25 1.5 1.75 (semseg) "
                             f"(default {' '.join(f'{x:g}' for x in scales)})")
    add_threads_option(parser)


def load_for_inference(args: argparse.Namespace) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The checkpoint's model, prepared for inference (:func:`prepare_for_inference`), and the checkpoint."""
    saved = load_checkpoint(args.checkpoint)
    model_config = saved_model_config(saved, args.checkpoint)
    if model_config.num_classes != NUM_CLASSES:
        raise ValueError(f"{args.checkpoint} predicts {model_config.num_classes} classes but Cityscapes-layout data "
                         f"has {NUM_CLASSES} trainIds; use a checkpoint trained on this data")
    model = model_from_checkpoint(saved)
    return prepare_for_inference(model, args.precision, args.device), saved


def inference_options(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """``predict_probs`` keyword arguments from the options (the crop defaults to the training crop)."""
    crop = args.crop or tuple((saved.get("config") or {}).get("crop") or TrainConfig().crop)  # default: the training crop
    return {"mode": "sliding" if args.sliding else "whole", "crop": crop, "flip": args.flip,
            "scales": tuple(args.scales)}


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")


_FIELDS = ("iters", "batch_size", "lr", "head_lr_mult", "alpha", "class_weighting", "seed", "device", "precision", "channels_last", "num_workers", "eval_every")


def config_from_args(args: argparse.Namespace, base: TrainConfig, **fields: Any) -> TrainConfig:
    """``base`` with the options the user gave (and ``fields``) applied; the data generated if needed."""
    changes: dict[str, Any] = {name: getattr(args, name) for name in _FIELDS if getattr(args, name, None) is not None}
    if args.crop is not None:
        changes["crop"] = args.crop
    if args.scale is not None:
        changes["scale"] = tuple(args.scale)
    if args.val_split is not None:
        changes["val_split"] = None if args.val_split.lower() == "none" else args.val_split
    changes["model"] = _model_from_args(args, base)
    changes["data"] = str(args.data) if args.data is not None else str(ensure_synthetic())
    return dataclasses.replace(base, **changes, **fields)


def _model_from_args(args: argparse.Namespace, base: TrainConfig) -> PSPNetConfig:
    model = base.model if args.preset is None else preset_config(args.preset, base.model.num_classes)
    overrides: dict[str, Any] = {}
    if args.no_ppm:
        overrides["use_ppm"] = False
    if args.bins is not None:
        overrides["bins"] = tuple(args.bins)
    if args.pooling is not None:
        overrides["pooling"] = args.pooling
    if args.ppm_channels is not None:
        overrides["ppm_channels"] = args.ppm_channels
    return dataclasses.replace(model, **overrides)


def set_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        torch.set_num_threads(args.threads)
