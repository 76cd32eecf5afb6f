"""Tests for pspnet_edu.provenance: the record says which command, commit and versions made a result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pspnet_edu
import pspnet_edu.provenance as provenance_module
from pspnet_edu.provenance import command_line, provenance, running_command


def test_the_record_names_versions_commit_and_threads() -> None:
    record = provenance(seconds=1.234)
    assert record["torch"] == torch.__version__ and record["torch_threads"] == torch.get_num_threads()
    assert record["wall_seconds"] == 1.2
    json.dumps(record)  # goes into results files as it is


def test_the_commit_is_the_checkout_of_the_package_and_none_outside_one(monkeypatch, tmp_path) -> None:
    package = Path(pspnet_edu.__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the package is not in a git checkout here")
    monkeypatch.chdir(tmp_path)  # the package's commit, not the current folder's
    assert provenance()["commit"] == head.stdout.strip()
    monkeypatch.setattr(provenance_module, "_REPOSITORY", tmp_path)  # a folder outside any checkout
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    record = provenance()
    assert record["commit"] is None and record["uncommitted_changes"] is None


def test_the_command_is_the_one_given_to_main_not_the_test_runner(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/some/where/bin/pytest", "-q"])
    assert command_line() == "pytest -q"  # the program's name, not its path
    with running_command(["pspnet-edu", "train", "--out", "a folder"]):
        assert command_line() == "pspnet-edu train --out 'a folder'"  # quoted as a shell would need
        assert provenance()["command"] == command_line()
    assert command_line() == "pytest -q"


def test_run_json_records_the_cli_command(tmp_path) -> None:
    from pspnet_edu.training.runfolder import RunFolder

    with running_command(["pspnet-edu", "train", "--iters", "2"]), RunFolder(tmp_path / "run") as folder:
        pass
    assert json.loads((folder.path / "run.json").read_text())["command"] == "pspnet-edu train --iters 2"
