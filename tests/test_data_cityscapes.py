"""Tests of pspnet_edu.data.cityscapes on a fake Cityscapes tree made by the test."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pspnet_edu.data import CityscapesSegmentation, generate_synthetic, label_ids_to_train_ids
from pspnet_edu.data.cityscapes import read_png

H, W = 8, 16


def label_pattern(seed: int) -> np.ndarray:
    """labelIds with trained and untrained ids (0 unlabeled, 4 static, 9 parking, 14 guard rail, 29 caravan)."""
    values = np.array([7, 8, 11, 23, 26, 33, 0, 4, 9, 14, 29, 30], dtype=np.uint8)
    return np.random.default_rng(seed).choice(values, size=(H, W)).astype(np.uint8)


def make_fake_cityscapes(root: Path, layout: dict[str, dict[str, int]]) -> dict[Path, np.ndarray]:
    """Write {split: {city: n_frames}} in the official layout; return {label path: labelIds}."""
    written = {}
    for split, cities in layout.items():
        for city, count in cities.items():
            for frame in range(count):
                stem = f"{city}_{frame:06d}_000019"
                image_dir, label_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
                image_dir.mkdir(parents=True, exist_ok=True)
                label_dir.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(frame)
                Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image_dir / f"{stem}_leftImg8bit.png")
                label = label_pattern(frame + 100 * len(city))
                Image.fromarray(label).save(label_dir / f"{stem}_gtFine_labelIds.png")
                written[label_dir / f"{stem}_gtFine_labelIds.png"] = label
    return written


@pytest.fixture
def fake_root(tmp_path):
    make_fake_cityscapes(tmp_path, {"train": {"aachen": 2, "bremen": 1}, "val": {"lindau": 2}})
    return tmp_path


def test_reads_images_and_maps_labels_exactly(fake_root):
    data = CityscapesSegmentation(fake_root, "train", transforms=None)  # the images as stored
    assert len(data) == 3
    assert [p.name for p, _ in data.samples] == [
        "aachen_000000_000019_leftImg8bit.png", "aachen_000001_000019_leftImg8bit.png",
        "bremen_000000_000019_leftImg8bit.png"]
    for index, (image_path, label_path) in enumerate(data.samples):
        image, mask = data[index]
        assert image.dtype == torch.float32 and image.shape == (3, H, W)
        assert 0 <= image.min() and image.max() <= 1
        expected_image = np.asarray(Image.open(image_path)).transpose(2, 0, 1) / 255
        assert np.allclose(image.numpy(), expected_image)
        assert mask.dtype == torch.int64 and mask.shape == (H, W)
        label_ids = np.asarray(Image.open(label_path))
        assert mask.numpy().tolist() == label_ids_to_train_ids(label_ids).tolist()
        # Untrained ids become 255 and trained ones their trainIds (parking 9 -> 255, car 26 -> 13).
        assert (mask[torch.from_numpy(np.isin(label_ids, [0, 4, 9, 14, 29, 30]))] == 255).all()
        assert (mask[torch.from_numpy(label_ids == 26)] == 13).all()


def test_the_default_item_is_what_a_model_takes_and_the_raw_image_needs_asking_for(fake_root):
    """model(dataset[i][0][None]) on a [0, 1] image scored mIoU 0.07 instead of 0.64 without a word."""
    from pspnet_edu.data import EvalTransforms, denormalize
    from pspnet_edu.pspnet import build_pspnet

    ready, raw = CityscapesSegmentation(fake_root, "val"), CityscapesSegmentation(fake_root, "val", transforms=None)
    image, mask = ready[0]
    expected_image, expected_mask = EvalTransforms()(*raw[0])
    assert torch.equal(image, expected_image) and torch.equal(mask, expected_mask)
    assert image.min() < 0 and torch.allclose(denormalize(image), raw[0][0], atol=1e-6)  # normalised, and back
    model = build_pspnet("tiny", num_classes=19, bins=(1,)).eval()  # the fake frames are 8x16

    def logits(x):
        with torch.no_grad():
            return model(x[None])["out"]
    assert torch.equal(logits(image), logits(expected_image)) and not torch.allclose(logits(raw[0][0]), logits(image))


def test_transforms_are_applied(fake_root):
    def flip(image, mask):
        return image.flip(-1), mask.flip(-1)

    plain, flipped = CityscapesSegmentation(fake_root, "val"), CityscapesSegmentation(fake_root, "val", flip)
    assert torch.equal(flipped[1][1], plain[1][1].flip(-1))


def test_kept_decoded_items_equal_fresh_ones_and_the_files_are_read_once(fake_root, monkeypatch):
    from pspnet_edu.data import TrainTransforms
    from pspnet_edu.data import cityscapes

    def items(data, seed):
        torch.manual_seed(seed)  # the same augmentation for both datasets
        return [data[i] for i in range(len(data))]

    transforms = TrainTransforms(crop_size=(6, 12), scale=(0.5, 2.0))
    fresh = CityscapesSegmentation(fake_root, "train", transforms=transforms)
    kept = CityscapesSegmentation(fake_root, "train", transforms=transforms, keep_decoded=True)
    reads = []
    monkeypatch.setattr(cityscapes, "read_png", lambda path, mode=None: reads.append(path) or read_png(path, mode))
    for epoch in range(3):
        for (image, mask), (image_kept, mask_kept) in zip(items(fresh, epoch), items(kept, epoch)):
            assert torch.equal(image, image_kept) and torch.equal(mask, mask_kept)
            assert mask_kept.dtype == torch.int64
    assert len([p for p in reads if p in {path for path, _ in kept.samples}]) == 3 + 3 * len(fresh)  # kept: epoch 1
    kept.keep_decoded = False  # and back: reads again, memory freed
    assert kept[0][0].shape == (3, 6, 12) and not kept.keep_decoded


def test_decoded_megabytes_counts_four_bytes_a_pixel(fake_root):
    data = CityscapesSegmentation(fake_root, "train")
    assert data.decoded_megabytes() == 3 * H * W * 4 / 2**20


def test_missing_root_says_how_to_get_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="cityscapes-dataset.com.*pspnet-edu data synthetic"):
        CityscapesSegmentation(tmp_path / "nowhere", "train")


def test_missing_split_lists_the_splits_found(fake_root):
    with pytest.raises(FileNotFoundError, match=r"no split 'test'.*\['train', 'val'\]"):
        CityscapesSegmentation(fake_root, "test")


def test_split_without_images(fake_root):
    (fake_root / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    with pytest.raises(ValueError, match="split 'test' has no images"):
        CityscapesSegmentation(fake_root, "test")


def test_image_without_label_names_the_file(fake_root):
    missing = fake_root / "gtFine" / "train" / "bremen" / "bremen_000000_000019_gtFine_labelIds.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="bremen_000000_000019_gtFine_labelIds.png"):
        CityscapesSegmentation(fake_root, "train")


def test_label_of_another_size(fake_root):
    label = fake_root / "gtFine" / "val" / "lindau" / "lindau_000001_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((H // 2, W // 2), np.uint8)).save(label)
    data = CityscapesSegmentation(fake_root, "val")
    data[0]  # the other file is fine
    with pytest.raises(ValueError, match="lindau_000001_000019_gtFine_labelIds.png is 8x4 but its image"):
        data[1]


def test_colour_label_instead_of_label_ids(fake_root):
    label = fake_root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(label)
    with pytest.raises(ValueError, match="3 channels"):
        CityscapesSegmentation(fake_root, "val")[0]


@pytest.mark.parametrize("which", ["leftImg8bit", "gtFine"])
def test_truncated_png_names_the_file(fake_root, which):
    data = CityscapesSegmentation(fake_root, "val")
    path = data.samples[0][0 if which == "leftImg8bit" else 1]
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"cannot decode .*{path.name}.*corrupt or truncated"):
        data[0]


def test_not_a_png_names_the_file(fake_root):
    data = CityscapesSegmentation(fake_root, "train")
    data.samples[2][0].write_text("not an image")
    with pytest.raises(ValueError, match="bremen_000000_000019_leftImg8bit.png"):
        data[2]


def test_a_train_id_mask_saved_as_label_ids_is_named(fake_root):
    """A common mix-up: trainIds (0..18, 255) under the labelIds name once trained to mIoU 0 silently."""
    data = CityscapesSegmentation(fake_root, "val")
    label_path = data.samples[1][1]
    train_ids = label_ids_to_train_ids(np.asarray(Image.open(label_path)))  # 0..18 and 255
    Image.fromarray(train_ids).save(label_path)
    data[0]  # the other file is fine
    with pytest.raises(ValueError, match=rf"{label_path.name} looks like a trainId mask .*255.*"
                                         r"hold labelIds 0..33; regenerate it, convert it"):
        data[1]


def test_values_that_are_no_label_ids_are_named(fake_root):
    data = CityscapesSegmentation(fake_root, "train")
    label_path = data.samples[0][1]
    Image.fromarray(np.full((H, W), 40, np.uint8)).save(label_path)
    with pytest.raises(ValueError, match=rf"{label_path.name} holds values 40, which are no Cityscapes labelIds"):
        data[0]


def test_void_label_ids_are_read_as_ignore(fake_root):
    """Real labelId files hold the void classes 0..6 (unlabeled, ego vehicle, out of roi, static...)."""
    data = CityscapesSegmentation(fake_root, "val")
    label_path = data.samples[0][1]
    Image.fromarray(np.array([0, 1, 2, 3, 4, 5, 6, 7] * (H * W // 8), np.uint8).reshape(H, W)).save(label_path)
    mask = data[0][1]
    assert set(mask.unique().tolist()) == {0, 255}


def test_16_bit_grey_images_are_scaled_to_8_bits_not_clipped(tmp_path):
    """PIL's convert clips 16-bit values at 255: a 16-bit photo was read as a white image."""
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "grey16.png")
    rgb = read_png(tmp_path / "grey16.png", "RGB")
    assert rgb.dtype == np.uint8 and rgb[..., 0].tolist() == [[0, 1, 128, 255]] and (rgb[..., 1] == rgb[..., 0]).all()
    assert read_png(tmp_path / "grey16.png").tolist() == values.tolist()  # no mode: the stored values
    Image.fromarray(np.full((2, 2), 0.5, np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ValueError, match="float.tiff holds floating-point pixels; save it as an 8- or 16-bit PNG"):
        read_png(tmp_path / "float.tiff", "RGB")


def test_a_split_of_train_id_masks_without_255_is_refused_when_built(tmp_path):
    """Synthcity converted to trainIds has no void pixel, so no 255: it trained to an mIoU of 0.06 without a word."""
    root = generate_synthetic(tmp_path / "synth", train=3, val=1, size=(48, 96))
    for label in (root / "gtFine" / "train").rglob("*_labelIds.png"):
        Image.fromarray(label_ids_to_train_ids(np.asarray(Image.open(label)))).save(label)
    with pytest.raises(ValueError, match=r"label files look like trainId masks, not labelIds: the 3 checked .*"
                                         r"none of the labelIds 19..33"):
        CityscapesSegmentation(root, "train")
    assert len(CityscapesSegmentation(root, "val")) == 1  # its labelIds are fine


def test_unannotated_label_ids_are_not_taken_for_train_ids(fake_root):
    """Frames whose labelIds are all void (0 unlabeled, 1 ego vehicle...) say nothing about trainIds."""
    for label in (fake_root / "gtFine" / "val").rglob("*_labelIds.png"):
        Image.fromarray(np.full((H, W), 0, np.uint8)).save(label)
    assert set(CityscapesSegmentation(fake_root, "val")[0][1].unique().tolist()) == {255}
