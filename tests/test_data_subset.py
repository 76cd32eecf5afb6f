"""Tests of pspnet_edu.data.subset: a deterministic, resized copy of a (fake) Cityscapes tree."""

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from pspnet_edu.data import CityscapesSegmentation
from pspnet_edu.data.subset import build_cityscapes_subset, evenly_spaced

H, W = 16, 32


def make_fake_cityscapes(root, layout):
    """{split: {city: n_frames}} with images, labelIds, color and instanceIds files."""
    for split, cities in layout.items():
        for city, count in cities.items():
            image_dir, label_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
            image_dir.mkdir(parents=True)
            label_dir.mkdir(parents=True)
            for frame in range(count):
                stem = f"{city}_{frame:06d}_000019"
                rng = np.random.default_rng(frame)
                Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image_dir / f"{stem}_leftImg8bit.png")
                label = rng.choice(np.array([0, 7, 8, 9, 26, 33], np.uint8), (H, W))
                Image.fromarray(label).save(label_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(np.dstack([label] * 3 + [np.full_like(label, 255)])).save(label_dir / f"{stem}_gtFine_color.png")
                Image.fromarray(label.astype(np.uint16) * 1000).save(label_dir / f"{stem}_gtFine_instanceIds.png")
    return root


@pytest.fixture
def source(tmp_path):
    return make_fake_cityscapes(tmp_path / "cityscapes", {"train": {"aachen": 5, "bochum": 2}, "val": {"lindau": 3}})


def tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_evenly_spaced_choice():
    assert evenly_spaced(5, 3) == [0, 2, 4]
    assert evenly_spaced(5, 1) == [0]
    assert evenly_spaced(3, 10) == [0, 1, 2]


def test_subset_layout_sizes_and_labels(source, tmp_path):
    before = tree(source)
    out = build_cityscapes_subset(source, tmp_path / "subset", per_city=3, size=(8, 12))
    assert tree(source) == before  # the source is never modified
    images = sorted(p.name for p in (out / "leftImg8bit").rglob("*.png"))
    assert images == ["aachen_000000_000019_leftImg8bit.png", "aachen_000002_000019_leftImg8bit.png",
                      "aachen_000004_000019_leftImg8bit.png", "bochum_000000_000019_leftImg8bit.png",
                      "bochum_000001_000019_leftImg8bit.png", "lindau_000000_000019_leftImg8bit.png",
                      "lindau_000001_000019_leftImg8bit.png", "lindau_000002_000019_leftImg8bit.png"]
    for path in (out / "gtFine").rglob("*_labelIds.png"):
        label = np.asarray(Image.open(path))
        assert label.shape == (8, 12)
        original = np.asarray(Image.open(source / path.relative_to(out)))
        assert set(np.unique(label)) <= set(np.unique(original))  # nearest: no invented labelIds
        assert np.array_equal(label, original[1::2][:, [1, 4, 6, 9, 12, 14, 17, 20, 22, 25, 28, 30]])
        instance = np.asarray(Image.open(str(path).replace("labelIds", "instanceIds")))
        assert np.array_equal(instance // 1000, label)  # instanceIds resized the same way (nearest)
    image = Image.open(out / "leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png")
    assert image.size == (12, 8) and image.mode == "RGB"
    expected = Image.open(source / "leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png").resize(
        (12, 8), Image.Resampling.BILINEAR)
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    assert len(CityscapesSegmentation(out, "train")) == 5 and len(CityscapesSegmentation(out, "val")) == 3


def test_manifest(source, tmp_path):
    out = build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(8, 16), splits=("val",))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "cityscapes_subset"
    assert manifest["source"] == str(source.resolve())
    assert manifest["options"] == {"per_city": 1, "size": [8, 16], "splits": ["val"]}
    files = {k: v for k, v in tree(out).items() if k != "manifest.json"}
    assert manifest["sha256"] == files and manifest["file_count"] == 4


def test_twice_gives_identical_files(source, tmp_path):
    first = build_cityscapes_subset(source, tmp_path / "a", per_city=2, size=(8, 16))
    second = build_cityscapes_subset(source, tmp_path / "b", per_city=2, size=(8, 16))
    assert tree(first) == {k: v for k, v in tree(second).items()}
    rebuilt = build_cityscapes_subset(source, first, per_city=2, size=(8, 16))  # replaces its own output
    assert tree(rebuilt) == tree(second)


def test_missing_split_is_skipped_with_a_warning(source, tmp_path):
    with pytest.warns(UserWarning, match="split 'test' is not in"):
        out = build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(8, 16), splits=("val", "test"))
    assert not (out / "leftImg8bit" / "test").exists()


def test_no_split_at_all(source, tmp_path):
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no images found"):
        build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(8, 16), splits=("test",))
    assert not (tmp_path / "subset").exists()


def test_bad_inputs(source, tmp_path):
    with pytest.raises(FileNotFoundError, match="cityscapes-dataset.com"):
        build_cityscapes_subset(tmp_path / "nowhere", tmp_path / "subset", per_city=1, size=(8, 16))
    with pytest.raises(ValueError, match="has no name"):
        build_cityscapes_subset(source, "", per_city=1, size=(8, 16))
    with pytest.raises(ValueError, match="inside the source"):
        build_cityscapes_subset(source, source / "small", per_city=1, size=(8, 16))
    with pytest.raises(ValueError, match="per_city"):
        build_cityscapes_subset(source, tmp_path / "subset", per_city=0, size=(8, 16))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="left untouched"):
        build_cityscapes_subset(source, mine, per_city=1, size=(8, 16))
    assert (mine / "keep.txt").read_text() == "mine"


def test_image_without_label(source, tmp_path):
    (source / "gtFine/train/bochum/bochum_000001_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(FileNotFoundError, match="bochum_000001_000019_gtFine_labelIds.png"):
        build_cityscapes_subset(source, tmp_path / "subset", per_city=2, size=(8, 16))


def test_corrupt_source_png_names_it_and_leaves_nothing(source, tmp_path):
    bad = source / "leftImg8bit/val/lindau/lindau_000002_000019_leftImg8bit.png"
    bad.write_bytes(bad.read_bytes()[:50])
    with pytest.raises(ValueError, match="lindau_000002_000019_leftImg8bit.png"):
        build_cityscapes_subset(source, tmp_path / "out" / "subset", per_city=3, size=(8, 16))
    assert list((tmp_path / "out").iterdir()) == []  # no half-written subset, no temporary folder


# --- Issue 13: never delete what a user added; the umask; absurd sizes. -----------------------

def test_a_subset_holding_user_files_is_never_replaced(source, tmp_path):
    out = build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(8, 16))
    (out / "notes.txt").write_text("mine")
    (out / "leftImg8bit" / "train" / "mycity").mkdir()
    before = tree(out)
    with pytest.raises(FileExistsError, match=r"holds files that are not part of its cityscapes_subset set "
                                              r"\(leftImg8bit/train/mycity/, notes.txt\); it was left untouched: move"):
        build_cityscapes_subset(source, out, per_city=2, size=(8, 16))
    assert tree(out) == before and (out / "leftImg8bit" / "train" / "mycity").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cityscapes", "subset"]  # no temporary folder left


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=lambda umask: f"umask{umask:03o}")
def test_the_subset_folder_follows_the_umask(source, tmp_path, umask):
    old = os.umask(umask)
    try:
        out = build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(8, 16))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("size, text", [
    ((99999999, 99999999), r"size 99999999x99999999 is far larger than any Cityscapes image"),
    ((32, 32), r"size 32x32 is larger than the source images \(aachen_000000_000019_leftImg8bit.png is 16x32\); "
               r"a subset only shrinks: pass a size of at most 16x32"),
    ((8, 64), r"size 8x64 is larger than the source images"),
])
def test_sizes_larger_than_the_source_are_refused_before_any_work(source, tmp_path, size, text):
    with pytest.raises(ValueError, match=text):
        build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=size)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cityscapes"]


def test_the_source_size_itself_is_allowed(source, tmp_path):
    out = build_cityscapes_subset(source, tmp_path / "subset", per_city=1, size=(H, W))
    assert Image.open(next((out / "leftImg8bit").rglob("*.png"))).size == (W, H)
