"""``pspnet-edu predict``: coloured masks and overlays for images, one pair of PNGs per image.

Argument parsing and file handling only: the model is prepared by
:func:`pspnet_edu.inference.prepare_for_inference` and applied by :func:`pspnet_edu.inference.predict`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from pspnet_edu.cli.options import add_inference_options, inference_options, load_for_inference, positive_float, set_threads
from pspnet_edu.data.cityscapes import read_png
from pspnet_edu.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from pspnet_edu.data.visualize import colorize, overlay
from pspnet_edu.files import check_writable, write_atomic
from pspnet_edu.inference import available_memory, memory_estimate, predict
from pspnet_edu.training.checkpoint import saved_model_config

SUFFIXES = ("_pred_color.png", "_overlay.png")


def output_names(paths: list[Path]) -> dict[Path, str]:
    """A unique output stem per image: its own stem, made longer only where two would collide.

    Colliding names take their folders in front, joined by '__' (``a/x.png`` -> ``a__x``),
    one more folder at a time, and the file's extension where only it differs (``x.png`` and
    ``x.jpg`` -> ``x_png``, ``x_jpg``); a name that another image's name already is (``a__x.png``
    beside ``a/x.png``) is made longer in the same way. The same file given twice is refused:
    its two outputs would be one.

    >>> output_names([Path("a/x.png"), Path("b/x.png"), Path("b/y.png")])
    {PosixPath('a/x.png'): 'a__x', PosixPath('b/x.png'): 'b__x', PosixPath('b/y.png'): 'y'}
    >>> output_names([Path("a/x.png"), Path("a/x.jpg")])
    {PosixPath('a/x.png'): 'x_png', PosixPath('a/x.jpg'): 'x_jpg'}
    """
    resolved = [path.resolve() for path in paths]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            first = paths[resolved.index(path)]
            same = "is given twice" if first == paths[index] else f"and {first} are the same file"
            raise ValueError(f"{paths[index]} {same}; pass each image once")
    candidates = {path: _name_candidates(real) for path, real in zip(paths, resolved)}
    level = dict.fromkeys(paths, 0)  # which candidate each image uses
    while True:
        names = {path: candidates[path][level[path]] for path in paths}
        groups: dict[str, list[Path]] = {}
        for path, name in names.items():
            groups.setdefault(name, []).append(path)
        clashes = [group for group in groups.values() if len(group) > 1]
        if not clashes:
            return names
        for group in clashes:  # the shortest names grow first: a/x -> a__x does not push a__x.png further
            growing = [path for path in group if level[path] + 1 < len(candidates[path])]
            if not growing:
                raise ValueError(f"{group[0]} and {group[1]} would both write {names[group[0]]}{SUFFIXES[0]}; "
                                 "predict them with two commands, each with its own --out")
            shortest = min(level[path] for path in growing)
            for path in growing:
                level[path] += level[path] == shortest


def _name_candidates(path: Path) -> list[str]:
    """Output stems for the image at ``path`` (absolute), shortest first: ``x``, ``x_png``, ``a__x``, ``a__x_png``..."""
    folders = path.parent.parts[1:]  # without the root "/"
    extension = path.suffix.lstrip(".")
    names = []
    for depth in range(len(folders) + 1):
        stem = "__".join((*folders[len(folders) - depth:], path.stem))
        names += [stem, f"{stem}_{extension}"] if extension else [stem]
    return names


def _memory_budget(args: argparse.Namespace) -> int:
    if args.max_memory is not None:
        return int(args.max_memory * 2**30)
    available = available_memory()
    return available // 2 if available else 4 * 2**30


def _check_memory(path: Path, size: tuple[int, int], saved: dict, options: dict, budget: int) -> None:
    """Refuse an image that would need more memory than allowed, naming the size and a way out."""
    config = saved_model_config(saved, "the checkpoint")
    need = memory_estimate(config, *size, **options)
    if need <= budget:
        return
    sliding = memory_estimate(config, *size, **{**options, "mode": "sliding", "crop": (512, 1024)})
    raise ValueError(f"{path} is {size[0]}x{size[1]}: predicting it needs about {need / 2**30:.1f} GB, more than the "
                     f"{budget / 2**30:.1f} GB allowed (--max-memory); use --sliding --crop 512x1024 (about "
                     f"{sliding / 2**30:.1f} GB), shrink it with --scales 0.5, or raise --max-memory")


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    paths = [Path(p) for p in args.images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image(s) not found: {', '.join(missing)}; pass paths to PNG or JPEG files")
    out = Path(args.out)
    check_writable(out, "--out")
    names = output_names(paths)
    targets = {p: tuple(out / f"{names[p]}{suffix}" for suffix in SUFFIXES) for p in paths}
    inputs = {p.resolve() for p in paths}
    overwritten = [t for pair in targets.values() for t in pair if t.resolve() in inputs]
    if overwritten:
        raise ValueError(f"{overwritten[0]} is one of the images to predict, and a result would be written over it; "
                         "choose another --out")
    existing = [str(t) for pair in targets.values() for t in pair if t.exists()]
    if existing and not args.force:
        raise FileExistsError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")
    model, saved = load_for_inference(args)
    options, budget = inference_options(args, saved), _memory_budget(args)
    normalize = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    for path in paths:
        rgb = read_png(path, "RGB")  # (H, W, 3) uint8; PIL reads JPEG too
        _check_memory(path, rgb.shape[:2], saved, options, budget)
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)  # (3, H, W) in [0, 1]
        labels = predict(model, normalize(image).to(args.device), **options).cpu()  # (H, W) trainIds
        for target, array in zip(targets[path], (colorize(labels), overlay(rgb, labels))):
            write_atomic(target, lambda f, a=array: Image.fromarray(np.ascontiguousarray(a)).save(f, format="PNG"))
        print(f"{path} -> {targets[path][0]}, {targets[path][1]}")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `predict`."""
    parser = subparsers.add_parser(
        "predict", help="coloured masks and overlays for images",
        description=f"Predict images; writes OUT/NAME{SUFFIXES[0]} and OUT/NAME{SUFFIXES[1]} (images of the same "
                    "name in different folders get their folder in NAME).")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files to predict (one or more)")
    add_inference_options(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--max-memory", type=positive_float, default=None, metavar="GB",
                        help="refuse images that would need more (default: half of the available memory)")
    parser.set_defaults(func=run)
