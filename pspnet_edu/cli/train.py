"""`pspnet-edu train | evaluate | predict | ablate alpha | ablate ppm | demo`.

Training, evaluation and inference on the command line. Argument parsing only: the work is
done by ``pspnet_edu.train``, ``pspnet_edu.inference`` and ``pspnet_edu.ablate``. See
notebooks/07_training.ipynb, 08_evaluation.ipynb and 09_ablations.ipynb.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_training_options(parser: argparse.ArgumentParser, *, iters: int | None = None) -> None:
    """Options shared by `train`, `ablate alpha` and `ablate ppm` (defaults: TrainConfig's)."""
    parser.add_argument("--preset", default="tiny", choices=["tiny", "torchvision", "paper"],
                        help="model preset (default: tiny, trains on a CPU in minutes)")
    parser.add_argument("--data", default=None,
                        help="dataset folder in the Cityscapes layout (default: the synthetic set, generated on first use)")
    parser.add_argument("--iters", type=int, default=iters, help="training iterations (optimizer steps)")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default 8)")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="training crop (default 128 256)")
    parser.add_argument("--scale", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="random resize range (default 0.5 2.0, paper Sec. 4.1)")
    parser.add_argument("--lr", type=float, default=None, help="base learning rate (default 0.01, paper)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                        help="fp32, bf16 autocast (CPU/CUDA) or fp16 AMP (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format (GPUs)")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading processes (default 0)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate every N iterations (0: at the end)")


def _config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields from the shared options; unset options keep TrainConfig's defaults."""
    data = args.data
    if data is None:
        from pspnet_edu.data.synthetic import ensure_synthetic

        data = ensure_synthetic()
    names = ("preset", "iters", "batch_size", "crop", "scale", "lr", "device", "precision", "channels_last",
             "num_workers", "eval_every")  # argparse dests equal TrainConfig field names
    kwargs = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    kwargs["data"] = str(data)
    return kwargs


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


# --------------------------------------------------------------------------- train


def _train(args: argparse.Namespace) -> int:
    from pspnet_edu.train import TrainConfig, train

    _set_threads(args)
    overrides: dict[str, Any] = {}
    if args.no_ppm:
        overrides["use_ppm"] = False
    if args.bins is not None:
        overrides["bins"] = tuple(args.bins)
    if args.pooling is not None:
        overrides["pooling"] = args.pooling
    config = TrainConfig(**_config_kwargs(args), alpha=args.alpha, seed=args.seed, out=args.out,
                         overrides=overrides, checkpoint_every=args.checkpoint_every)
    result = train(config, resume=args.resume)
    if result.interrupted:
        return 130  # the shell's convention for "stopped by a signal"
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports, as it alone writes the run folder
    if result.final is not None:
        print(f"final val mIoU: {result.final['miou']:.4f}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


# --------------------------------------------------------------------------- evaluate


def format_scores(result: dict[str, Any], class_names: list[str]) -> str:
    """Per-class IoU table, pixel and mean accuracy, and a last line ``mIoU: 0.xxxx``."""
    lines = [f"{'class':<15}{'IoU':>8}"]
    for name, iou in zip(class_names, result["iou"]):
        lines.append(f"{name:<15}{iou:>8.4f}" if iou == iou else f"{name:<15}{'-':>8}  (absent)")
    lines += [f"pixel accuracy: {result['pixel_acc']:.4f}", f"mean accuracy: {result['mean_acc']:.4f}",
              f"mIoU: {result['miou']:.4f}"]
    return "\n".join(lines)


def _load_model(checkpoint: str, device: str):  # -> (nn.Module, dict)
    from pspnet_edu.data.labels import NUM_CLASSES
    from pspnet_edu.train import load_checkpoint, model_from_checkpoint

    saved = load_checkpoint(checkpoint)
    num_classes = (saved["model_config"] or {}).get("num_classes")
    if num_classes != NUM_CLASSES:
        raise ValueError(f"{checkpoint} predicts {num_classes} classes but Cityscapes-layout data has "
                         f"{NUM_CLASSES} trainIds; use a checkpoint trained on this data")
    return model_from_checkpoint(saved, device), saved


def _inference_options(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    crop = args.crop if args.crop is not None else saved["config"]["crop"]
    return {"mode": "sliding" if args.sliding else "whole", "crop": tuple(crop), "flip": args.flip,
            "scales": tuple(args.scales)}


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from pspnet_edu.data import CityscapesSegmentation, EvalTransforms
    from pspnet_edu.data.labels import CLASS_NAMES, NUM_CLASSES
    from pspnet_edu.inference import evaluate

    _set_threads(args)
    model, saved = _load_model(args.checkpoint, args.device)
    data = args.data if args.data is not None else saved["config"]["data"]
    dataset = CityscapesSegmentation(data, args.split, transforms=EvalTransforms())
    result = evaluate(model, dataset, num_classes=NUM_CLASSES, device=args.device, batch_size=args.batch_size,
                      **_inference_options(args, saved))
    if args.json:
        from pspnet_edu.train import write_atomic

        payload = {k: v for k, v in result.items() if k != "confusion_matrix"}
        payload["iou"] = [v if v == v else None for v in payload["iou"]]
        payload["confusion_matrix"] = result["confusion_matrix"].tolist()
        payload["class_names"] = list(CLASS_NAMES)
        write_atomic(args.json, json.dumps(payload, indent=1))
    print(format_scores(result, list(CLASS_NAMES)))
    return 0


# --------------------------------------------------------------------------- predict


def _predict(args: argparse.Namespace) -> int:
    import os

    import numpy as np
    from PIL import Image
    from torchvision.transforms import v2

    from pspnet_edu.data.cityscapes import read_png
    from pspnet_edu.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from pspnet_edu.data.visualize import colorize, overlay
    from pspnet_edu.inference import predict

    import torch

    _set_threads(args)
    paths = [Path(p) for p in args.images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image(s) not found: {', '.join(missing)}; pass paths to PNG or JPEG files")
    model, saved = _load_model(args.checkpoint, args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    targets = {p: (out / f"{p.stem}_pred_color.png", out / f"{p.stem}_overlay.png") for p in paths}
    existing = [str(t) for pair in targets.values() for t in pair if t.exists()]
    if existing and not args.force:
        raise FileExistsError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")
    normalize = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    for path in paths:
        rgb = read_png(path, "RGB")  # (H, W, 3) uint8; PIL reads JPEG too
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)  # (3, H, W) in [0, 1]
        labels = predict(model, normalize(image).to(args.device), **_inference_options(args, saved)).cpu()  # (H, W)
        for target, array in zip(targets[path], (colorize(labels), overlay(rgb, labels))):
            tmp = target.with_name(f".{target.name}.tmp")
            Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
            os.replace(tmp, target)
        print(f"{path} -> {targets[path][0]}, {targets[path][1]}")
    return 0


# --------------------------------------------------------------------------- ablations and demo


def _ablate_alpha(args: argparse.Namespace) -> int:
    from pspnet_edu.ablate import ablate_alpha

    _set_threads(args)
    ablate_alpha(alphas=args.alphas, seeds=args.seeds, out=args.out, base=_config_kwargs(args),
                 with_ppm=args.with_ppm)
    return 0


def _ablate_ppm(args: argparse.Namespace) -> int:
    from pspnet_edu.ablate import PPM_VARIANTS, ablate_ppm

    _set_threads(args)
    unknown = sorted(set(args.variants) - set(PPM_VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(PPM_VARIANTS)}")
    ablate_ppm(variants=args.variants, seeds=args.seeds, out=args.out, base=_config_kwargs(args))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pspnet_edu.ablate import run_demo

    _set_threads(args)
    run_demo(out=args.out, base=_config_kwargs(args))
    return 0


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="RUN_DIR/last.pt written by `pspnet-edu train`")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default: cpu)")
    parser.add_argument("--sliding", action="store_true", help="sliding-window inference (stride 2/3 of the crop)")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="sliding-window size (default: the training crop)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored image")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="multi-scale inference, e.g. 0.5 0.75 1.0 1.25 1.5 1.75 (semseg)")
    parser.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for torch")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register train, evaluate, predict, ablate {alpha, ppm} and demo."""
    p = subparsers.add_parser("train", help="train PSPNet (poly LR, auxiliary loss); resumable",
                              description="Train PSPNet with SGD, the poly policy and the auxiliary loss. "
                                          "Writes OUT/last.pt and OUT/history.{json,csv}. Ctrl-C saves and stops; "
                                          "--resume continues exactly. Runs under torchrun for DDP.")
    _add_training_options(p)
    p.add_argument("--alpha", type=float, default=0.4, help="auxiliary loss weight (default 0.4, paper Table 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/train", help="run folder (default runs/train)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save last.pt every N iterations (0: at the end)")
    p.add_argument("--no-ppm", action="store_true", help="the dilated-FCN baseline: no pyramid pooling")
    p.add_argument("--bins", type=int, nargs="+", default=None, help="pyramid bins (default 1 2 3 6)")
    p.add_argument("--pooling", choices=["avg", "max"], default=None, help="pyramid pooling (default avg)")
    p.set_defaults(func=_train)

    p = subparsers.add_parser("evaluate", help="per-class IoU and mIoU of a checkpoint",
                              description="Evaluate a checkpoint on a split; the last line is `mIoU: 0.xxxx`.")
    _add_inference_options(p)
    p.add_argument("--data", default=None, help="dataset folder (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=_positive_int, default=1)
    p.add_argument("--json", default=None, help="also write the scores and the confusion matrix to this file")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("predict", help="coloured masks and overlays for images",
                              description="Predict images; writes OUT/NAME_pred_color.png and OUT/NAME_overlay.png.")
    _add_inference_options(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=_predict)

    ablate = subparsers.add_parser("ablate", help="the paper's ablations: alpha sweep, PPM variants",
                                   description="Re-run the paper's ablations (Tables 1 and 2) at course scale.")
    commands = ablate.add_subparsers(dest="ablate_command", required=True, metavar="ABLATION")
    p = commands.add_parser("alpha", help="sweep the auxiliary loss weight (paper Table 2)")
    _add_training_options(p)
    p.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    p.add_argument("--seeds", type=_positive_int, default=2, help="seeds 0..N-1 per setting (default 2)")
    p.add_argument("--with-ppm", action="store_true",
                   help="sweep PSPNet itself (default: the dilated FCN without PPM, as in the paper's Table 2)")
    p.add_argument("--out", default="runs/ablate_alpha")
    p.set_defaults(func=_ablate_alpha)
    p = commands.add_parser("ppm", help="no PPM vs B1 vs B1236, average vs max pooling (paper Table 1)")
    _add_training_options(p)
    p.add_argument("--variants", nargs="+", default=["none", "B1-avg", "B1-max", "B1236-avg", "B1236-max"])
    p.add_argument("--seeds", type=_positive_int, default=2, help="seeds 0..N-1 per setting (default 2)")
    p.add_argument("--out", default="runs/ablate_ppm")
    p.set_defaults(func=_ablate_ppm)

    p = subparsers.add_parser("demo", help="the main job: train PSPNet and the no-PPM baseline, compare",
                              description="Generate the synthetic set if absent, train the tiny PSPNet and the "
                                          "no-PPM baseline, evaluate both, print per-class IoU and `mIoU:`, and "
                                          "save a figure of predictions and training curves. Unset options "
                                          "keep the demo's recipe (pspnet_edu.ablate.DEMO_RECIPE).")
    _add_training_options(p)
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(func=_demo, eval_every=None)  # None: DEMO_RECIPE's, not --eval-every's 0
