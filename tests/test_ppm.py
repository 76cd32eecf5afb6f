"""Tests for pspnet_edu.ppm: against the author's PPM, own weights per branch, errors."""

import pytest
import torch
import torch.nn.functional as F
from reference.semseg_pspnet import PPM as OfficialPPM
from torch import nn

from pspnet_edu.convert import semseg_key
from pspnet_edu.ppm import PyramidPoolingModule, adaptive_pool_windows, fixed_kernel_avgpool


def test_equals_the_official_ppm_with_the_same_weights():
    torch.manual_seed(0)
    official = OfficialPPM(64, 16, (1, 2, 3, 6), nn.BatchNorm2d)
    ours = PyramidPoolingModule(64, bins=(1, 2, 3, 6), align_corners=True)
    renamed = {
        semseg_key("ppm." + k).removeprefix("ppm."): v for k, v in official.state_dict().items()
    }
    ours.load_state_dict(renamed, strict=True)
    x = torch.randn(2, 64, 13, 19)
    torch.testing.assert_close(ours(x), official(x))  # training mode: batch statistics
    torch.testing.assert_close(ours.eval()(x), official.eval()(x))


def test_shapes_and_channels():
    ppm = PyramidPoolingModule(2048)
    assert ppm.out_channels == 4096  # paper Sec. 3.2: 2048 + 4 x 512
    assert [b.conv.out_channels for b in ppm.branches] == [512] * 4
    x = torch.randn(2, 48, 7, 11)
    y = PyramidPoolingModule(48, bins=(1, 2, 3, 6)).eval()(x)
    assert y.shape == (2, 96, 7, 11)
    assert torch.equal(y[:, :48], x)  # the input comes first, unchanged


def test_each_branch_owns_its_weights():
    ppm = PyramidPoolingModule(32, bins=(1, 2, 3, 6))
    params = list(ppm.parameters())
    assert len({p.data_ptr() for p in params}) == len(params) == 4 * 3  # conv, BN weight, BN bias
    convs = [branch.conv for branch in ppm.branches]
    assert len({id(c) for c in convs}) == 4
    assert all(c.bias is None and c.kernel_size == (1, 1) for c in convs)
    assert [branch.bins for branch in ppm.branches] == [1, 2, 3, 6]


def test_max_pooling_pools_the_maximum():
    torch.manual_seed(0)
    ppm = PyramidPoolingModule(8, bins=(1,), pooling="max").eval()
    assert isinstance(ppm.branches[0].pool, nn.AdaptiveMaxPool2d)
    x = torch.randn(1, 8, 5, 5)
    assert torch.equal(ppm.branches[0].pool(x), x.amax(dim=(2, 3), keepdim=True))


def test_bins_must_divide_the_channels_unless_the_width_is_given():
    with pytest.raises(ValueError, match="3 bins .* do not divide the 100 input channels"):
        PyramidPoolingModule(100, bins=(1, 2, 3))
    ppm = PyramidPoolingModule(100, bins=(1, 2, 3), reduction_channels=32)
    assert ppm.out_channels == 100 + 3 * 32


@pytest.mark.parametrize("kwargs, text", [(dict(pooling="median"), "('avg', 'max', 'none')"),
                                          (dict(bins=()), "bins"), (dict(bins=(0, 2)), "bins")])
def test_bad_arguments(kwargs, text):
    with pytest.raises(ValueError) as error:
        PyramidPoolingModule(16, **kwargs)
    assert text in str(error.value)


def test_batch_size_one_in_training_gets_a_clear_error_and_three_ways_out():
    ppm = PyramidPoolingModule(16, bins=(1, 2, 3, 6))
    x = torch.randn(1, 16, 6, 6)
    with pytest.raises(ValueError, match="batch size 1 in training mode") as error:
        ppm(x)
    assert "model.eval()" in str(error.value) and "at least 2" in str(error.value)
    ppm(torch.randn(2, 16, 6, 6))  # a batch of 2 trains
    ppm.eval()(x)  # eval mode
    ppm.train()
    for module in ppm.modules():  # frozen BatchNorm
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    ppm(x)
    PyramidPoolingModule(16, bins=(2, 6))(x)  # without a 1x1 bin BN sees >= 4 values


@pytest.mark.parametrize("size", range(1, 25))
def test_adaptive_pool_windows_are_pytorchs(size):
    x = torch.randn(1, 1, size)
    for bins in (1, 2, 3, 6):
        windows = adaptive_pool_windows(size, bins)
        manual = torch.stack([x[..., a:b].mean(-1) for a, b in windows], dim=-1)
        torch.testing.assert_close(manual, F.adaptive_avg_pool1d(x, bins))


def test_fixed_kernel_pooling_equals_adaptive_only_when_bins_divide_the_size():
    torch.manual_seed(0)
    for size in range(6, 31):
        x = torch.randn(1, 2, size, size)
        for bins in (1, 2, 3, 6):
            fixed, adaptive = fixed_kernel_avgpool(x, bins), F.adaptive_avg_pool2d(x, bins)
            same = fixed.shape == adaptive.shape and torch.allclose(fixed, adaptive)
            assert same == (size % bins == 0), (size, bins)


def test_the_capacity_control_has_the_same_parameters_and_no_context():
    """pooling="none" keeps every branch's conv, BN and ReLU, but a pixel's output depends on that pixel only."""
    torch.manual_seed(0)
    pooled, control = PyramidPoolingModule(16, pooling="avg").eval(), PyramidPoolingModule(16, pooling="none").eval()
    assert [p.shape for p in pooled.parameters()] == [p.shape for p in control.parameters()]
    x = torch.randn(1, 16, 12, 12)
    far = x.clone()
    far[..., 8:, 8:] += 5.0  # change only the far corner
    with torch.no_grad():
        assert torch.equal(control(x)[..., :4, :4], control(far)[..., :4, :4])  # no context reaches (0..3, 0..3)
        assert not torch.allclose(pooled(x)[..., :4, :4], pooled(far)[..., :4, :4])  # the pyramid's does
    assert control(x).shape == pooled(x).shape == (1, 32, 12, 12)
