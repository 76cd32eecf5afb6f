"""The committed course checkpoints (data/checkpoints): safe to load, and they score what their sidecars say."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from pspnet_edu.cli import main

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
NAMES = ("pspnet_tiny", "fcn_tiny", "pspnet_demo", "fcn_demo")  # 3,200 steps; the demo's 800 steps

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("name", NAMES)
def test_loads_with_weights_only_and_is_small(name) -> None:
    path = CHECKPOINTS / f"{name}.pt"
    saved = torch.load(path, weights_only=True)  # refuses pickled code
    assert path.stat().st_size <= 4 * 2**20 and "optimizer" not in saved
    sidecar = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    assert {"val_miou", "training_command", "recipe", "iterations", "training_seconds", "provenance"} <= set(sidecar)
    assert sidecar["training_command"].startswith("pspnet-edu ")
    assert saved["config"]["model"]["use_ppm"] == name.startswith("pspnet")


@pytest.fixture(scope="module")
def fresh_data_root(tmp_path_factory) -> Path:
    """An empty data folder: the evaluations below must generate the default Synthcity themselves."""
    return tmp_path_factory.mktemp("fresh_data")


def readme_commands() -> dict[str, str]:
    """The README's ``pspnet-edu evaluate --checkpoint data/checkpoints/NAME.pt`` commands, by NAME."""
    readme = (CHECKPOINTS.parents[1] / "README.md").read_text()
    found = re.findall(r"^(pspnet-edu evaluate --checkpoint data/checkpoints/(\w+)\.pt)\s*(?:#.*)?$", readme, re.M)
    return {name: command for command, name in found}


def test_the_readme_shows_the_evaluate_command_of_every_course_checkpoint() -> None:
    assert sorted(readme_commands()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_readme_command_reproduces_the_sidecar_in_a_fresh_folder(name, fresh_data_root, tmp_path, monkeypatch,
                                                                       capsys) -> None:
    """The README's command, run where nothing but the checkpoint is (no --data, no Synthcity yet)."""
    (tmp_path / "data" / "checkpoints").mkdir(parents=True)
    shutil.copy(CHECKPOINTS / f"{name}.pt", tmp_path / "data" / "checkpoints")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PSPNET_EDU_DATA", str(fresh_data_root))
    command = shlex.split(readme_commands()[name])
    assert main([*command[1:], "--threads", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    sidecar = json.loads((CHECKPOINTS / f"{name}.json").read_text())
    assert float(last.removeprefix("mIoU: ")) == pytest.approx(sidecar["val_miou"], abs=1e-3)
    assert (fresh_data_root / "synthcity" / "manifest.json").is_file()


def test_at_the_demos_budget_pspnet_beats_its_twin_on_both_context_pairs() -> None:
    records = {name: json.loads((CHECKPOINTS / f"{name}.json").read_text()) for name in NAMES}
    for pair in (("bus", "train"), ("terrain", "vegetation")):
        psp = sum(records["pspnet_demo"]["iou"][c] for c in pair) / 2
        fcn = sum(records["fcn_demo"]["iou"][c] for c in pair) / 2
        assert psp > fcn + 0.2, (pair, psp, fcn)
    assert records["pspnet_demo"]["iterations"] == records["fcn_demo"]["iterations"] == 800
