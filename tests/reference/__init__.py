"""Independent reference implementations that tests compare pspnet_edu with, and the one
helper those comparisons share."""

from torch import nn


def randomise_batchnorm(model: nn.Module) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so that a mix-up would show
    (freshly built BN layers are the identity in eval mode and would hide one)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
