"""A tiny dataset and configs shared by the training tests (a helper module, not a test file)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from pspnet_edu.pspnet import preset_config
from pspnet_edu.training import TrainConfig

SIZE = (48, 48)  # the tiny preset needs >= 41 pixels so that its 1/8 map covers the 6x6 bin


class Toy(torch.utils.data.Dataset):
    """Blocky scenes of 4 classes, each drawn in its own colour plus noise, with a random flip
    drawn from the global torch RNG (as torchvision transforms do)."""

    def __init__(self, n: int = 6, augment: bool = True) -> None:
        generator = torch.Generator().manual_seed(123)
        coarse = torch.randint(0, 4, (n, 1, 6, 6), generator=generator).float()
        self.masks = nn.functional.interpolate(coarse, size=SIZE, mode="nearest")[:, 0].long()  # (n, H, W)
        colours = torch.randn(4, 3, generator=generator)
        self.images = colours[self.masks].permute(0, 3, 1, 2) + 0.3 * torch.randn(n, 3, *SIZE, generator=generator)
        self.masks[:, :2, :] = 255  # a few ignored pixels
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.images[i], self.masks[i]
        if self.augment and torch.rand(()) < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image, mask


def toy_config(tmp_path, name: str = "run", **changes) -> TrainConfig:
    """A 6-step tiny run of 4 classes into ``tmp_path/name``; ``model_fields`` change the model."""
    model = preset_config("tiny", **{"num_classes": 4, **changes.pop("model_fields", {})})
    settings = dict(model=model, out=str(tmp_path / name), iters=6, batch_size=2, crop=SIZE, log_every=1, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


def with_fields(config: TrainConfig, **changes) -> TrainConfig:
    return dataclasses.replace(config, **changes)
