"""What a run is made from: the model a config describes, and the datasets in its data folder.

:func:`train_from_config` is what ``pspnet-edu train``, the experiments and the lessons call:
it builds the model (:func:`build_model`, seeded) and the datasets (:func:`build_datasets`,
with the paper's augmentation) and hands them to :func:`pspnet_edu.training.loop.train`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import torch
from torch import nn

from pspnet_edu.data import CLASS_NAMES, CityscapesSegmentation, EvalTransforms, TrainTransforms, dataset_fingerprint
from pspnet_edu.data.cityscapes import KEEP_DECODED_MB
from pspnet_edu.files import check_no_link_loop
from pspnet_edu.pspnet import PSPNet
from pspnet_edu.training.checkpoint import save_checkpoint
from pspnet_edu.training.config import TrainConfig
from pspnet_edu.training.loop import TrainResult, train


def build_model(config: TrainConfig) -> PSPNet:
    """The PSPNet that ``config.model`` describes, initialised from ``config.seed``."""
    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        torch.default_generator.manual_seed(config.seed)  # the CPU's only (the model is built there): see SeededSamples
        return PSPNet(config.model)


def build_datasets(config: TrainConfig) -> tuple[CityscapesSegmentation, CityscapesSegmentation | None]:
    """The training set (random scale, mirror, crop: paper Sec. 5.1) and the validation set of ``config.data``."""
    root = Path(config.data)
    check_no_link_loop(root, "data folder")
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist; generate the synthetic set with "
                                "`pspnet-edu data synthetic` or pass --data DIR (a folder in the Cityscapes layout)")
    train_set = CityscapesSegmentation(root, config.train_split,
                                       transforms=TrainTransforms(crop_size=config.crop, scale=config.scale))
    train_set.keep_decoded = train_set.decoded_megabytes() <= KEEP_DECODED_MB  # no PNG decoding after epoch 1
    val_set = None
    if config.val_split:
        if not (root / "leftImg8bit" / config.val_split).is_dir():
            found = sorted(p.name for p in (root / "leftImg8bit").glob("*") if p.is_dir())
            raise FileNotFoundError(f"{root} has no validation split {config.val_split!r} (splits found: "
                                    f"{', '.join(found) or 'none'}); pass --val-split SPLIT, or --val-split none to "
                                    "train without evaluation")
        val_set = CityscapesSegmentation(root, config.val_split, transforms=EvalTransforms())
        val_set.keep_decoded = val_set.decoded_megabytes() <= KEEP_DECODED_MB  # decoded once for every evaluation
    return train_set, val_set


def train_from_config(config: TrainConfig, *, resume: bool = False, force: bool = False,
                      progress: bool | None = None, snapshots: Collection[int] = ()) -> TrainResult:
    """Build the model and the datasets of ``config`` and train (or resume) the run.

    ``snapshots``: iterations after which the weights are also saved, to ``OUT/step{N}.pt``
    (``{"iteration": N, "model": state_dict}``; read with :func:`load_snapshot`), for measures
    along training such as the effective receptive field. Saving does not touch any random
    state: the run is the same with or without them.
    """
    train_set, val_set = build_datasets(config)
    model: nn.Module = build_model(config)
    wanted = frozenset(snapshots)

    def snapshot(iteration: int) -> None:
        if iteration in wanted:
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_checkpoint(snapshot_path(config.out, iteration), {"iteration": iteration, "model": weights})

    return train(config, model, train_set, val_set, resume=resume, force=force, progress=progress,
                 data_id=dataset_fingerprint(config.data), class_names=CLASS_NAMES,
                 on_step=snapshot if wanted else None)


def snapshot_path(run_dir: str | Path, iteration: int) -> Path:
    """Where :func:`train_from_config` saves the weights after ``iteration`` (``snapshots``)."""
    return Path(run_dir) / f"step{iteration}.pt"


def load_snapshot(config: TrainConfig, iteration: int) -> PSPNet:
    """The model of ``config`` with the weights saved after ``iteration`` (0: its initial weights)."""
    model = build_model(config)
    if iteration:
        path = snapshot_path(config.out, iteration)
        if not path.is_file():
            raise FileNotFoundError(f"no snapshot {path}; train the run with snapshots including {iteration}")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    return model.eval()
