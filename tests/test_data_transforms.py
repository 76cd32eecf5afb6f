"""Tests of pspnet_edu.data.transforms: image and mask stay aligned under every augmentation."""

import pytest
import torch
from torchvision.transforms import v2

from pspnet_edu.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransforms,
    TrainTransforms,
    denormalize,
)

LEVELS = 19  # labels 0..18 written into the image's red channel as label / 18


def labelled_pattern(height: int = 64, width: int = 96, block: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose red channel encodes the label at every pixel (blocks of random labels)."""
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, LEVELS, (height // block, width // block), generator=generator)
    mask = blocks.repeat_interleave(block, 0).repeat_interleave(block, 1)  # (H, W)
    image = torch.stack([mask / (LEVELS - 1), torch.rand(height, width, generator=generator),
                         torch.full((height, width), 0.5)])  # (3, H, W)
    return image, mask


def decode(image: torch.Tensor) -> torch.Tensor:
    return (image[0] * (LEVELS - 1)).round().long()


def interior(mask: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Pixels whose (2r+1)^2 neighbourhood holds one label and no 255: bilinear mixing cannot reach them."""
    padded = torch.nn.functional.pad(mask[None, None].float(), (radius,) * 4, value=-1)[0, 0]
    windows = padded.unfold(0, 2 * radius + 1, 1).unfold(1, 2 * radius + 1, 1)  # (H, W, k, k)
    same = (windows == mask[..., None, None]).flatten(-2).all(-1)
    return same & (mask != 255)


@pytest.mark.parametrize("seed", range(6))
def test_scale_crop_flip_rotate_keep_image_and_mask_aligned(seed):
    image, mask = labelled_pattern()
    transform = TrainTransforms(crop_size=(48, 64), rotate=True, normalize=False)
    torch.manual_seed(seed)
    out_image, out_mask = transform(image, mask)
    assert out_image.shape == (3, 48, 64) and out_mask.shape == (48, 64) and out_mask.dtype == torch.int64
    # Nearest neighbour only: no label appears that was not in the input (255 = padding / rotation).
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist()) | {255}
    inside = interior(out_mask)  # every pixel at least 2 px away from a block edge
    assert inside.sum() > 100
    assert torch.equal(decode(out_image)[inside], out_mask[inside])


@pytest.mark.parametrize("seed", range(4))
def test_crop_and_flip_at_scale_one_are_exact(seed):
    image, mask = labelled_pattern(32, 48, block=4)
    torch.manual_seed(seed)
    out_image, out_mask = TrainTransforms(crop_size=(16, 24), scale=(1.0, 1.0), normalize=False)(image, mask)
    assert torch.equal(decode(out_image), out_mask)
    # The crop is a window of the input (or of its mirror image).
    found = any(torch.equal(source[y:y + 16, x:x + 24], out_mask)
                for source in (mask, mask.flip(-1)) for y in range(17) for x in range(25))
    assert found


def test_flip_is_applied_to_both():
    image, mask = labelled_pattern(16, 32, block=4)
    flips = 0
    for seed in range(8):
        torch.manual_seed(seed)
        out_image, out_mask = TrainTransforms(crop_size=(16, 32), scale=(1.0, 1.0), normalize=False)(image, mask)
        assert torch.equal(decode(out_image), out_mask)
        flips += torch.equal(out_mask, mask.flip(-1))
    assert 0 < flips < 8  # p = 0.5: both outcomes happen


def test_crop_pads_image_with_mean_and_mask_with_ignore():
    image, mask = labelled_pattern(16, 24, block=4)
    torch.manual_seed(0)
    out_image, out_mask = TrainTransforms(crop_size=(40, 40), scale=(1.0, 1.0), hflip=False, normalize=False)(image, mask)
    padded = out_mask == 255
    assert padded.sum() == 40 * 40 - 16 * 24
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1)
    assert torch.allclose(out_image[:, padded], mean.expand(3, int(padded.sum())), atol=1e-6)
    # After normalisation, the padding is exactly zero.
    torch.manual_seed(0)
    normalised, _ = TrainTransforms(crop_size=(40, 40), scale=(1.0, 1.0), hflip=False)(image, mask)
    assert normalised[:, padded].abs().max() < 1e-5


def test_rotation_fills_mask_with_ignore():
    image, mask = labelled_pattern(32, 32, block=4)
    seen_ignore = False
    for seed in range(4):
        torch.manual_seed(seed)
        _, out_mask = TrainTransforms(crop_size=(32, 32), scale=(1.0, 1.0), rotate=True, normalize=False)(image, mask)
        seen_ignore |= bool((out_mask == 255).any())
    assert seen_ignore


def test_blur_changes_the_image_but_never_the_mask():
    image, mask = labelled_pattern(32, 32, block=4)
    blurred_any = False
    for seed in range(6):
        torch.manual_seed(seed)
        out_image, out_mask = TrainTransforms(crop_size=(32, 32), scale=(1.0, 1.0), hflip=False, blur=True,
                                              normalize=False)(image, mask)
        assert torch.equal(out_mask, mask)
        blurred_any |= not torch.allclose(out_image, image)
    assert blurred_any


def test_reproducible_from_torch_seed():
    image, mask = labelled_pattern()
    transform = TrainTransforms(crop_size=(32, 48), rotate=True, blur=True)
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        results.append(transform(image, mask))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    torch.manual_seed(124)
    other = transform(image, mask)
    assert not torch.equal(other[0], results[0][0])


def test_scale_range_is_respected():
    image, mask = labelled_pattern(40, 40, block=4)
    transform = TrainTransforms(crop_size=(80, 80), scale=(0.5, 2.0), hflip=False, normalize=False)
    sides = []
    for seed in range(12):
        torch.manual_seed(seed)
        _, out_mask = transform(image, mask)
        rows = (out_mask != 255).any(1).sum().item()
        sides.append(rows)
    assert 20 <= min(sides) and max(sides) <= 80 and max(sides) - min(sides) > 20


def test_eval_transforms_normalise_only():
    image, mask = labelled_pattern()
    out_image, out_mask = EvalTransforms()(image, mask)
    assert torch.equal(out_mask, mask)
    assert torch.allclose(out_image, v2.functional.normalize(image, list(IMAGENET_MEAN), list(IMAGENET_STD)))
    assert torch.allclose(denormalize(out_image), image, atol=1e-6)
    assert torch.equal(EvalTransforms(normalize=False)(image, mask)[0], image)


def test_denormalize_batch():
    x = torch.rand(2, 3, 4, 5)
    normalised = (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(denormalize(normalised), x, atol=1e-6)


def test_bad_inputs():
    image, mask = labelled_pattern()
    with pytest.raises(ValueError, match="same H, W"):
        TrainTransforms()(image, mask[:-1])
    with pytest.raises(ValueError, match="float image"):
        EvalTransforms()((image * 255).to(torch.uint8), mask)  # it keeps the stored floats' bits
    with pytest.raises(ValueError, match="float image"):
        TrainTransforms()(image.to(torch.int32), mask)
    with pytest.raises(ValueError, match="scale"):
        TrainTransforms(scale=(2.0, 0.5))


def test_a_uint8_image_is_scaled_as_uint8_then_made_float():
    # What the dataset hands TrainTransforms: the stored uint8 pixels. Without scaling (factor 1)
    # the result is the float image's (to float rounding); scaled, within one grey level of 255.
    image, mask = labelled_pattern()
    stored = (image * 255).round().to(torch.uint8)
    for scale, tolerance in [((1.0, 1.0), 1e-7), ((1.5, 1.5), 1 / 255), ((0.6, 0.6), 1 / 255)]:
        transforms = TrainTransforms(crop_size=tuple(image.shape[-2:]), scale=scale, hflip=False, normalize=False)
        torch.manual_seed(0)
        from_uint8, mask_u = transforms(stored, mask)
        torch.manual_seed(0)  # the same crop
        from_float, mask_f = transforms(stored.float() / 255, mask)
        assert from_uint8.dtype == torch.float32 and torch.equal(mask_u, mask_f)
        difference = (from_uint8 - from_float).abs().max().item()
        assert difference <= tolerance + 1e-5 and (scale[0] == 1.0 or difference > 1e-4)  # scaled: rounded
