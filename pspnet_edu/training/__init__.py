"""Training PSPNet as the paper does (Zhao et al. 2017, Sec. 4 and 5.1), one job per module.

    config      TrainConfig: everything that defines a run (the model's PSPNetConfig inside)
    optim       SGD over two parameter groups (backbone 1x, PPM and heads 10x) and the poly schedule
    step        train_step: one step of the paper's recipe, and where each value is defined
    loop        train(config, model, train_set, val_set): the loop around it (devices, precision, saving)
    setup       build_model, build_datasets, train_from_config: a run from its config alone (snapshots)
    sampling    seeds, the order of the images and their augmentation: exact resume
    memory      freed memory kept for the next step (glibc's malloc thresholds): faster CPU steps
    checkpoint  last.pt: save, load safely, rebuild the model
    export      a finished run as small committed weights + a sidecar (course checkpoints)
    trained_on  the data a checkpoint was trained on, by its source (found again on any machine)
    history     the losses, learning rates and evaluations of a run, and their files
    runfolder   the run folder: ownership, lock, writable check
    stop        Ctrl-C / SIGTERM: save and stop
    distributed torchrun: DDP, SyncBatchNorm, one GPU per process

Taught in notebooks/07_training.ipynb; notebooks/10_scaling_up.ipynb runs it under torchrun.
"""

from pspnet_edu.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, model_from_checkpoint, saved_config
from pspnet_edu.training.config import PRECISIONS, TrainConfig, config_from_dict, config_to_dict
from pspnet_edu.training.loop import NonFiniteLossError, TrainResult, train
from pspnet_edu.training.optim import build_optimizer, param_groups
from pspnet_edu.training.sampling import EndlessBatches
from pspnet_edu.training.setup import build_datasets, build_model, load_snapshot, train_from_config
from pspnet_edu.training.step import train_step

__all__ = [
    "CHECKPOINT_NAME", "EndlessBatches", "NonFiniteLossError", "PRECISIONS", "TrainConfig", "TrainResult",
    "build_datasets", "build_model", "build_optimizer", "config_from_dict", "config_to_dict", "load_checkpoint",
    "load_snapshot",
    "model_from_checkpoint", "param_groups", "saved_config", "train", "train_from_config", "train_step",
]
