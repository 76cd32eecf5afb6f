"""Tests of `pspnet-edu data synthetic | cityscapes-subset` through the real command-line entry point."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pspnet_edu.cli import main


def test_synthetic_command(tmp_path, capsys):
    out = tmp_path / "synthcity"
    assert main(["data", "synthetic", "--out", str(out), "--train", "2", "--val", "1", "--size", "48x96",
                 "--seed", "1"]) == 0
    assert f"to {out}" in capsys.readouterr().out
    images = sorted((out / "leftImg8bit").rglob("*.png"))
    assert len(images) == 3 and Image.open(images[0]).size == (96, 48)


def test_synthetic_again_with_the_same_options_does_nothing_unless_forced(tmp_path, capsys):
    out = tmp_path / "synthcity"
    command = ["data", "synthetic", "--out", str(out), "--train", "1", "--val", "1", "--size", "48x96"]
    assert main(command) == 0
    manifest = out / "manifest.json"
    inode = manifest.stat().st_ino
    capsys.readouterr()
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"already there: {out} holds 1 train + 1 val")
    assert "(pass --force to regenerate)" in printed
    assert manifest.stat().st_ino == inode  # not rewritten
    assert main([*command, "--force"]) == 0
    assert capsys.readouterr().out.startswith("wrote 1 train + 1 val")
    assert manifest.stat().st_ino != inode


def test_synthetic_never_deletes_a_user_file_even_with_force(tmp_path, capsys):
    out = tmp_path / "synthcity"
    command = ["data", "synthetic", "--out", str(out), "--train", "1", "--val", "1", "--size", "48x96"]
    assert main(command) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    for extra in (["--seed", "2"], ["--force"]):
        assert main([*command, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "notes.txt" in err and "move those files out" in err, err
        assert (out / "notes.txt").read_text() == "mine"


def test_synthetic_default_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PSPNET_EDU_DATA", str(tmp_path))
    assert main(["data", "synthetic", "--train", "1", "--val", "1", "--size", "48x96"]) == 0
    assert (tmp_path / "synthcity" / "manifest.json").is_file()


def test_empty_output_name_is_a_clear_error(capsys):
    assert main(["data", "synthetic", "--out", "", "--train", "1", "--val", "1"]) == 2
    assert "has no name" in capsys.readouterr().err


def test_bad_size_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synthetic", "--out", "x", "--size", "128by256"])
    assert exit_info.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_cityscapes_subset_command(tmp_path, capsys):
    root = tmp_path / "cityscapes"
    for split in ("train", "val"):
        image_dir, label_dir = root / "leftImg8bit" / split / "ulm", root / "gtFine" / split / "ulm"
        image_dir.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        for frame in range(3):
            stem = f"ulm_{frame:06d}_000019"
            Image.fromarray(np.full((16, 32, 3), frame * 40, np.uint8)).save(image_dir / f"{stem}_leftImg8bit.png")
            Image.fromarray(np.full((16, 32), 7, np.uint8)).save(label_dir / f"{stem}_gtFine_labelIds.png")
    out = tmp_path / "subset"
    status = main(["data", "cityscapes-subset", "--root", str(root), "--out", str(out), "--per-city", "2",
                   "--size", "8x16", "--splits", "train", "test"])
    captured = capsys.readouterr()
    assert status == 0
    assert "split 'test' is not in" in captured.err
    assert len(list((out / "leftImg8bit" / "train").rglob("*.png"))) == 2
    assert not (out / "leftImg8bit" / "val").exists()


def test_cityscapes_subset_missing_root(tmp_path, capsys):
    status = main(["data", "cityscapes-subset", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "o"),
                   "--per-city", "1", "--size", "8x16"])
    assert status == 2
    assert "cityscapes-dataset.com" in capsys.readouterr().err


def test_cityscapes_subset_absurd_size_is_one_line(tmp_path, capsys):
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit" / "train").mkdir(parents=True)
    status = main(["data", "cityscapes-subset", "--root", str(root), "--out", str(tmp_path / "o"),
                   "--per-city", "1", "--size", "99999999x99999999"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "size 99999999x99999999 is far larger than any Cityscapes image" in err


def start_a_long_build(out):
    """`data synthetic` in a process of its own, returned once it is drawing into its hidden temporary folder."""
    process = subprocess.Popen([sys.executable, "-m", "pspnet_edu", "data", "synthetic", "--out", str(out),
                                "--train", "3000", "--val", "0", "--size", "64x128"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(f".{out.name}.*.tmp/leftImg8bit")):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_build_leaves_no_hidden_folder(tmp_path, capsys, signum):
    """SIGTERM left a hidden temporary folder (3 MB) for good; so does kill -9, until the next build removes it."""
    out = tmp_path / "synthcity"
    process = start_a_long_build(out)
    process.send_signal(signum)
    process.wait(timeout=60)
    if signum == signal.SIGTERM:  # cleans up itself, and says so in one line
        error = process.stderr.read().strip()
        assert process.returncode == 130 and len(error.splitlines()) == 1, error
        assert "stopped by SIGTERM: the unfinished synthcity set was removed" in error
        assert list(tmp_path.iterdir()) == []
    else:
        process.stderr.close()
        assert main(["data", "synthetic", "--out", str(out), "--train", "2", "--val", "1", "--size", "48x96"]) == 0
        assert [p.name for p in tmp_path.iterdir()] == ["synthcity"]


def test_a_symbolic_link_loop_is_named(tmp_path, capsys):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert main(["data", "synthetic", "--out", str(tmp_path / "loop")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a symbolic link loop" in error
