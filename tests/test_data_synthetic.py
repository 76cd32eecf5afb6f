"""Tests of pspnet_edu.data.synthetic: layout, determinism, atomic writing, and the context design."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import Cityscapes

from pspnet_edu.data import CityscapesSegmentation, synthetic
from pspnet_edu.data.labels import LABEL_ID, label_ids_to_train_ids
from pspnet_edu.data.synthetic import (
    CONTEXT_CLASSES,
    CONTEXT_PAIRS,
    SYNTHCITY_CLASSES,
    draw_scene,
    ensure_synthetic,
    generate_synthetic,
)

SMALL = {"train": 4, "val": 2, "size": (64, 128), "seed": 3}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "synthcity", **SMALL)


def files_of(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cityscapes_layout_and_names(small_set):
    names = sorted(files_of(small_set))
    assert "leftImg8bit/train/synthbourg/synthbourg_000000_000019_leftImg8bit.png" in names
    assert "gtFine/train/pixelstadt/pixelstadt_000001_000019_gtFine_labelIds.png" in names
    assert "gtFine/val/rasterheim/rasterheim_000001_000019_gtFine_instanceIds.png" in names
    assert "gtFine/val/rasterheim/rasterheim_000000_000019_gtFine_color.png" in names
    assert len(names) == 4 * (SMALL["train"] + SMALL["val"]) + 1  # 4 files per image + manifest
    label = Image.open(small_set / "gtFine/train/synthbourg/synthbourg_000000_000019_gtFine_labelIds.png")
    assert label.mode == "L" and label.size == (128, 64)
    assert Image.open(small_set / "leftImg8bit/val/rasterheim/rasterheim_000000_000019_leftImg8bit.png").mode == "RGB"


def test_torchvision_cityscapes_reads_it(small_set):
    data = Cityscapes(str(small_set), split="train", mode="fine", target_type="semantic")
    assert len(data) == SMALL["train"]
    image, target = data[0]
    assert image.size == (128, 64) and target.size == (128, 64)
    ours = CityscapesSegmentation(small_set, "train")
    assert [str(p) for p, _ in ours.samples] == sorted(data.images)
    index = sorted(data.images).index(data.images[0])
    assert torch.equal(ours[index][1], torch.from_numpy(label_ids_to_train_ids(np.asarray(target)).astype(np.int64)))
    both = Cityscapes(str(small_set), split="val", mode="fine", target_type=["instance", "color"])
    _, (instance, colour) = both[0]
    assert instance.size == colour.size == (128, 64)


def test_labels_instances_and_colours_agree(small_set):
    for label_path in (small_set / "gtFine").rglob("*_labelIds.png"):
        label_ids = np.asarray(Image.open(label_path))
        instance = np.asarray(Image.open(str(label_path).replace("labelIds", "instanceIds")))
        colour = np.asarray(Image.open(str(label_path).replace("labelIds", "color")))
        assert set(np.unique(label_ids)) <= {LABEL_ID[n] for n in (
            "road", "sidewalk", "building", "pole", "traffic sign", "vegetation",
            "terrain", "sky", "person", "car", "bus", "train")}
        # Cityscapes convention: instanceId = labelId * 1000 + k for "thing" classes, labelId otherwise.
        assert np.array_equal(np.where(instance >= 1000, instance // 1000, instance), label_ids)
        sky = label_ids == LABEL_ID["sky"]
        assert (colour[sky] == (70, 130, 180, 255)).all()


def test_regeneration_is_byte_identical_and_seed_matters(tmp_path, small_set):
    again = generate_synthetic(tmp_path / "again", **SMALL)
    assert files_of(again) == files_of(small_set)
    other = generate_synthetic(tmp_path / "other", **{**SMALL, "seed": 4})
    assert files_of(other) != files_of(small_set)


def test_image_k_does_not_depend_on_the_count(tmp_path, small_set):
    fewer = generate_synthetic(tmp_path / "fewer", **{**SMALL, "train": 2, "val": 1})
    for name, content in files_of(fewer).items():
        if name != "manifest.json":
            assert content == (small_set / name).read_bytes(), name


def test_manifest_lists_every_file_with_its_checksum(small_set):
    manifest = json.loads((small_set / "manifest.json").read_text())
    assert manifest["kind"] == "synthcity" and manifest["version"] == synthetic.SYNTHCITY_VERSION
    assert manifest["options"] == {"train": 4, "val": 2, "size": [64, 128], "seed": 3}
    assert manifest["file_count"] == len(manifest["sha256"]) == 24
    import hashlib
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((small_set / name).read_bytes()).hexdigest() == digest


def test_ensure_generates_reuses_and_repairs(tmp_path):
    root = tmp_path / "data" / "synthcity"
    options = {"train": 2, "val": 1, "size": (48, 96), "seed": 0}
    assert ensure_synthetic(root, **options) == root
    manifest_time = (root / "manifest.json").stat().st_mtime_ns
    ensure_synthetic(root, **options)
    assert (root / "manifest.json").stat().st_mtime_ns == manifest_time  # complete: reused
    victim = next((root / "leftImg8bit").rglob("*.png"))
    victim.unlink()
    ensure_synthetic(root, **options)
    assert victim.is_file()  # incomplete: regenerated
    ensure_synthetic(root, **{**options, "train": 3})
    assert len(CityscapesSegmentation(root, "train")) == 3  # other options: regenerated
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PSPNET_EDU_DATA", str(tmp_path))
    assert synthetic.default_synthetic_root() == tmp_path / "synthcity"
    monkeypatch.delenv("PSPNET_EDU_DATA")
    assert synthetic.default_synthetic_root().parent.name == "data"


def test_a_folder_of_the_user_is_never_replaced(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="left untouched"):
        ensure_synthetic(mine, train=1, val=1, size=(48, 96))
    assert (mine / "notes.txt").read_text() == "keep me"


# --- Nothing a learner adds to a Synthcity folder is ever deleted (issue 13). -----------------

TINY = {"train": 2, "val": 1, "size": (48, 96), "seed": 0}


def tree(root):
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def tiny_set(tmp_path):
    return generate_synthetic(tmp_path / "data" / "synthcity", **TINY)


def test_a_set_of_our_own_files_is_replaced_when_the_version_changes(tiny_set, monkeypatch):
    monkeypatch.setattr(synthetic, "SYNTHCITY_VERSION", synthetic.SYNTHCITY_VERSION + 1)
    assert ensure_synthetic(tiny_set, **TINY) == tiny_set
    assert json.loads((tiny_set / "manifest.json").read_text())["version"] == synthetic.SYNTHCITY_VERSION
    assert [p.name for p in tiny_set.parent.iterdir()] == ["synthcity"]  # no temporary folder left


@pytest.mark.parametrize("addition", ["notes.txt", "leftImg8bit/train/mycity/mycity_000000_000019_leftImg8bit.png",
                                      "gtFine/val/mine/"])
@pytest.mark.parametrize("change", ["options", "version"])
def test_a_set_holding_user_files_is_never_replaced(tiny_set, monkeypatch, addition, change):
    added = tiny_set / addition
    if addition.endswith("/"):
        added.mkdir(parents=True)  # even an empty folder of the user's is kept
    else:
        added.parent.mkdir(parents=True, exist_ok=True)
        added.write_text("mine")
    before = tree(tiny_set)
    options = {**TINY, "train": 3} if change == "options" else TINY
    if change == "version":
        monkeypatch.setattr(synthetic, "SYNTHCITY_VERSION", synthetic.SYNTHCITY_VERSION + 1)
    shown = "leftImg8bit/train/mycity/" if addition.startswith("leftImg8bit") else addition  # a new folder: once
    with pytest.raises(FileExistsError, match=rf"holds files that are not part of its synthcity set \({shown}\); it "
                                              r"was left untouched: move those files out of .*, or choose another folder"):
        ensure_synthetic(tiny_set, **options)
    assert tree(tiny_set) == before
    assert [p.name for p in tiny_set.parent.iterdir()] == ["synthcity"]


def test_the_error_names_two_files_and_counts_the_others(tiny_set):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tiny_set / name).write_text("mine")
    with pytest.raises(FileExistsError, match=r"made with train=2 val=1 size=48x96 seed=0, not train=3 val=1 "
                                              r"size=48x96 seed=0\) but holds .*\(a.txt, b.txt and 1 more\)"):
        ensure_synthetic(tiny_set, **{**TINY, "train": 3})


def test_an_edited_file_of_the_set_counts_as_the_users(tiny_set):
    label = next((tiny_set / "gtFine").rglob("*_labelIds.png"))
    label.write_bytes(label.read_bytes() + b"edited")
    with pytest.raises(FileExistsError, match=label.name):
        generate_synthetic(tiny_set, **TINY, force=True)
    assert label.read_bytes().endswith(b"edited")


def test_the_default_folder_says_how_to_use_another(tmp_path, monkeypatch):
    monkeypatch.setenv("PSPNET_EDU_DATA", str(tmp_path))
    root = generate_synthetic(tmp_path / "synthcity", **TINY)
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes.txt.*set PSPNET_EDU_DATA to another folder.*pass --data"):
        ensure_synthetic(**{**TINY, "seed": 1})
    assert (root / "notes.txt").read_text() == "mine"
    assert ensure_synthetic(**TINY) == root  # complete with these options: used as it is, notes and all


def test_same_options_do_nothing_and_force_regenerates(tiny_set):
    manifest = tiny_set / "manifest.json"
    stamp = manifest.stat().st_mtime_ns, manifest.stat().st_ino
    assert generate_synthetic(tiny_set, **TINY) == tiny_set
    assert (manifest.stat().st_mtime_ns, manifest.stat().st_ino) == stamp  # nothing was rewritten
    before = tree(tiny_set)
    assert generate_synthetic(tiny_set, **TINY, force=True) == tiny_set
    assert manifest.stat().st_ino != stamp[1] and tree(tiny_set) == before  # rewritten, byte-identical
    (tiny_set / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        generate_synthetic(tiny_set, **TINY, force=True)  # force never deletes a user's file
    assert (tiny_set / "notes.txt").read_text() == "mine"


def test_a_file_added_during_the_build_stops_the_swap(tiny_set, monkeypatch):
    def draw_and_add(*args, **kwargs):
        (tiny_set / "late.txt").write_text("written while the new set was being drawn")
        return draw_scene(*args, **kwargs)

    before = tree(tiny_set)
    monkeypatch.setattr(synthetic, "draw_scene", draw_and_add)
    with pytest.raises(FileExistsError, match="late.txt"):
        generate_synthetic(tiny_set, **{**TINY, "seed": 1})
    assert tree(tiny_set) == {**before, "late.txt": b"written while the new set was being drawn"}
    assert [p.name for p in tiny_set.parent.iterdir()] == ["synthcity"]


def test_a_failed_regeneration_keeps_the_old_set(tiny_set, monkeypatch):
    before = tree(tiny_set)
    monkeypatch.setattr(synthetic, "draw_scene", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        generate_synthetic(tiny_set, **{**TINY, "seed": 1})
    assert tree(tiny_set) == before
    assert [p.name for p in tiny_set.parent.iterdir()] == ["synthcity"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027, 0o077], ids=lambda umask: f"umask{umask:03o}")
def test_the_new_folder_follows_the_umask(tmp_path, umask):
    """mkdtemp makes 0700 folders: a set built by an instructor must stay readable by the students."""
    old = os.umask(umask)
    try:
        root = generate_synthetic(tmp_path / f"synthcity-{umask:o}", train=1, val=1, size=(48, 96))
    finally:
        os.umask(old)
    for folder in (root, root / "leftImg8bit" / "train"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder
    assert (root / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failure_leaves_nothing_half_written(tmp_path, monkeypatch):
    calls = []

    def failing_draw(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk full")
        return draw_scene(*args, **kwargs)

    monkeypatch.setattr(synthetic, "draw_scene", failing_draw)
    with pytest.raises(RuntimeError):
        generate_synthetic(tmp_path / "synthcity", train=3, val=1, size=(48, 96))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["", "."])
def test_empty_output_name(out):
    with pytest.raises(ValueError, match="has no name"):
        generate_synthetic(out, train=1, val=1)


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        generate_synthetic(tmp_path / "never-written", size=(8, 8))
    with pytest.raises(ValueError, match="at least one image"):
        generate_synthetic(tmp_path / "never-written", train=0, val=0)
    assert not (tmp_path / "never-written").exists()


# --- The context design: the pairs differ only in the sky, far from them. ---------------------

def merge_pairs(label_ids):
    merged = label_ids.copy()
    for first, second in CONTEXT_PAIRS:
        merged[merged == LABEL_ID[second]] = LABEL_ID[first]
    return merged


@pytest.mark.parametrize("seed", range(4))
def test_cues_change_only_the_sky_and_the_pair_labels(seed):
    scenes = {(dusk, cloudy): draw_scene(np.random.default_rng(seed), 64, 128, dusk, cloudy)
              for dusk in (False, True) for cloudy in (False, True)}
    base_rgb, base_label, base_instance = scenes[False, False]
    not_sky = base_label != LABEL_ID["sky"]
    whitish = {}
    for (dusk, cloudy), (rgb, label, instance) in scenes.items():
        # Every pixel that is not sky is identical, colour for colour: no local evidence at all.
        assert np.array_equal(rgb[not_sky], base_rgb[not_sky])
        assert np.array_equal(merge_pairs(label), merge_pairs(base_label))
        assert not np.isin(label, [LABEL_ID["train" if not dusk else "bus"],
                                   LABEL_ID["vegetation" if not cloudy else "terrain"]]).any()
        sky = rgb[label == LABEL_ID["sky"]].astype(float)  # (N, 3)
        orange = sky[:, 0] - sky[:, 2] > 60  # the glow: red well above blue; the day sky is the other way
        assert orange.mean() > 0.08 if dusk else orange.mean() < 0.01  # patches over part of the sky, at dusk only
        whitish[dusk, cloudy] = ((sky.max(1) - sky.min(1) < 45) & (sky.min(1) > 150)).mean()  # cloud: grey-white
    for dusk in (False, True):  # every sky has clouds: a "cloudy" one over more of the same sky than a clear one
        assert 0.04 < whitish[dusk, False] < 0.5 and whitish[dusk, True] - whitish[dusk, False] > 0.1


@pytest.mark.parametrize("seed", range(4))
def test_the_cues_change_the_average_of_the_sky(seed):
    """The PPM's 1x1 bin averages the whole map: each cue must move the average colour of the sky."""
    def sky_mean(dusk, cloudy):
        rgb, label, _ = draw_scene(np.random.default_rng(seed), 64, 128, dusk, cloudy)
        return rgb[label == LABEL_ID["sky"]].astype(float).mean(0)

    day, dusk, cloudy = sky_mean(False, False), sky_mean(True, False), sky_mean(False, True)
    assert dusk[0] - day[0] > 20 and dusk[2] < day[2]  # redder, less blue
    assert cloudy.min() - day.min() > 10  # whiter


def test_the_cue_is_visible_in_every_image_and_far_from_the_pairs():
    for seed in range(20):
        _, label, _ = draw_scene(np.random.default_rng(seed), 128, 256, bool(seed % 2), bool(seed // 2 % 2))
        assert (label[0] == LABEL_ID["sky"]).all()  # the top row is always sky
        assert (label == LABEL_ID["sky"]).mean() > 0.2
        sky_rows = np.nonzero((label == LABEL_ID["sky"]).any(1))[0]
        pair_ids = [LABEL_ID[name] for pair in CONTEXT_PAIRS for name in pair]
        pair_rows = np.nonzero(np.isin(label, pair_ids).any(1))[0]
        assert pair_rows.min() - sky_rows.max() >= 0.1 * 128  # buildings always lie in between


def test_classes_and_context_ids():
    assert CONTEXT_CLASSES == (15, 16, 9, 8)  # bus, train, terrain, vegetation
    assert len(SYNTHCITY_CLASSES) >= 10 and set(CONTEXT_CLASSES) <= set(SYNTHCITY_CLASSES)
    seen = set()
    for seed in range(12):
        _, label, _ = draw_scene(np.random.default_rng(seed), 128, 256, bool(seed % 2), bool(seed // 2 % 2))
        seen |= set(np.unique(label_ids_to_train_ids(label)).tolist())
    assert seen == set(SYNTHCITY_CLASSES)
