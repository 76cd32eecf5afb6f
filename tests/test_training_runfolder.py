"""Tests for pspnet_edu.training.runfolder: a run never overwrites what it did not write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from pspnet_edu.training import NonFiniteLossError, build_model, train
from pspnet_edu.training.runfolder import RunFolder
from training_toys import Toy, toy_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(config, **kwargs):
    return train(config, build_model(config), Toy(), None, **kwargs)


def test_a_users_folder_is_refused_and_left_untouched(tmp_path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("history.csv", "history.json", "notes.txt"):
        (folder / name).write_text("the user's own")
    with pytest.raises(FileExistsError, match="did not write.*left untouched"):
        run(toy_config(tmp_path, "mine", iters=1))
    assert sorted(p.name for p in folder.iterdir()) == ["history.csv", "history.json", "notes.txt"]
    assert all((folder / n).read_text() == "the user's own" for n in ("history.csv", "history.json", "notes.txt"))


def test_a_finished_run_needs_resume_or_force_and_force_replaces_only_the_runs_files(tmp_path) -> None:
    run(toy_config(tmp_path, iters=1))
    with pytest.raises(FileExistsError, match="--resume.*--force"):
        run(toy_config(tmp_path, iters=1))
    (tmp_path / "run" / "notes.txt").write_text("mine")  # a file the user added to the run folder
    again = run(toy_config(tmp_path, iters=2, seed=1), force=True)
    assert again.iteration == 2 and (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["kind"] == "pspnet-edu/run"


def test_nothing_to_resume(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run(toy_config(tmp_path), resume=True)
    assert not (tmp_path / "run").exists()  # the failed run left no empty folder behind


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path) -> None:
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(toy_config(tmp_path, batch_size=8), build_model(toy_config(tmp_path)), Toy(n=6))
    assert not (tmp_path / "run").exists()


def test_resume_refuses_other_settings_and_other_data(tmp_path) -> None:
    config = toy_config(tmp_path, iters=1)
    train(config, build_model(config), Toy(), None, data_id="manifest:aaaa")
    with pytest.raises(ValueError, match=r"other settings \(model.num_classes: 4 -> 5"):
        run(toy_config(tmp_path, iters=1, model_fields={"num_classes": 5}), resume=True)
    with pytest.raises(ValueError, match="other data"):
        train(config, build_model(config), Toy(), None, resume=True, data_id="manifest:bbbb")
    train(config, build_model(config), Toy(), None, resume=True, data_id="manifest:aaaa")  # the same data: fine


@pytest.mark.parametrize("where, message", [
    ("file", "is a file"),
    ("under_a_file", "is a file, not a folder"),
])
def test_out_that_cannot_be_a_folder(tmp_path, where, message) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "run"
    with pytest.raises(FileExistsError, match=message):
        run(toy_config(tmp_path, str(out.relative_to(tmp_path))))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_parent_is_reported_before_training(tmp_path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match="cannot write into"):
        run(toy_config(tmp_path, "locked/run"))


def test_a_read_only_folder_is_reported_before_training(tmp_path, monkeypatch) -> None:
    """Also as root (CI): the writability probe is what fails, so simulate a refusing file system."""
    import pspnet_edu.files as files

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=r"cannot write into .*Permission denied"):
        run(toy_config(tmp_path, iters=1))


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pspnet_edu.training.runfolder import RunFolder
    with RunFolder(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(30)
""")


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_first(tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "run")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match=rf"in use by another run \(pid {holder.pid} "):
            run(toy_config(tmp_path, iters=1))
    finally:
        holder.kill()
        holder.wait()
    with RunFolder(tmp_path / "run"):  # a killed run releases its lock
        pass


def run_files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


class Diverging(torch.nn.Module):
    """A model whose loss is NaN from the first step."""

    def __init__(self, config) -> None:
        super().__init__()
        self.net = build_model(config)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v * float("nan") for k, v in self.net(x).items()}


@pytest.mark.parametrize("mistake", ["batch larger than the data", "diverges at once"])
def test_force_keeps_the_previous_run_when_the_new_one_fails_before_it_saves(tmp_path, mistake) -> None:
    """--force once deleted last.pt and the history before a plain configuration mistake stopped the new run."""
    run(toy_config(tmp_path, iters=1))
    before = run_files(tmp_path / "run")
    if mistake == "batch larger than the data":
        with pytest.raises(ValueError, match="fewer than one batch"):
            run(toy_config(tmp_path, iters=1, batch_size=8), force=True)  # 8 images asked of a set of 6
    else:
        config = toy_config(tmp_path, iters=1)
        with pytest.raises(NonFiniteLossError, match=r"previous run in .*run was left as it was"):
            train(config, Diverging(config), Toy(), force=True)
    assert run_files(tmp_path / "run") == before  # last.pt, history and run.json as they were

