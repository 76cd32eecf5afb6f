"""`pspnet-edu evaluate`: the scores of a run, fp32 and bf16, sliding/flip/multi-scale, and --json safety."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cli_fixtures import data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main
from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.training.checkpoint import OLD_FORMAT


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_evaluate_prints_per_class_iou_and_the_training_runs_miou(run, data, capsys, tmp_path) -> None:
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--threads", "1",
                 "--json", str(tmp_path / "scores.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", lines[-1]), lines[-1]
    assert any(line.startswith("road") for line in lines)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert f"mIoU: {scores['miou']:.4f}" == lines[-1] and len(scores["confusion_matrix"]) == 19
    history = json.loads(open(f"{run}/history.json").read())  # folded BN computes the same scores
    assert lines[-1] == f"mIoU: {history['val'][-1]['miou']:.4f}"


def test_sliding_flip_multiscale_and_bf16(run, data, capsys) -> None:
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--sliding", "--crop", "48", "64",
                 "--flip", "--scales", "0.9", "1.0", "--threads", "1"]) == 0
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", last_line(capsys))
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--precision", "bf16"]) == 0
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", last_line(capsys))


def test_json_is_never_overwritten_without_force_and_a_folder_is_refused(run, data, capsys, tmp_path) -> None:
    target = tmp_path / "mine.json"
    target.write_text("the learner's notes")
    assert "--force" in one_line_error(capsys, ["evaluate", "--checkpoint", f"{run}/last.pt", "--json", str(target)])
    assert target.read_text() == "the learner's notes"
    assert "is a folder" in one_line_error(capsys, ["evaluate", "--checkpoint", f"{run}/last.pt",
                                                    "--json", str(tmp_path)])
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--json", str(target), "--force"]) == 0
    assert "miou" in json.loads(target.read_text())


@pytest.mark.parametrize("scales, message", [
    (["inf"], "each scale must be a number in (0, 4]"), (["nan"], "each scale must be"), (["1e9"], "each scale"),
    (["0"], "each scale"), (["0.5", "1", "img.png"], "'img.png' is not one; put the images before --scales"),
])
def test_bad_scales_are_refused_by_the_parser(run, capsys, scales, message) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--checkpoint", f"{run}/last.pt", "--scales", *scales])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_missing_corrupt_and_foreign_checkpoints(tmp_path, capsys) -> None:
    assert "does not exist" in one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt")])
    (tmp_path / "last.pt").write_bytes(b"\x00garbage")
    assert "corrupt" in one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "last.pt")])
    model = build_pspnet("tiny", num_classes=5)
    torch.save({"format": OLD_FORMAT, "model": model.state_dict(), "model_config": dataclasses.asdict(model.config),
                "config": {}}, tmp_path / "five.pt")
    assert "5 classes" in one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "five.pt")])


def test_a_checkpoint_that_does_not_name_its_data_asks_for_data(run, capsys, tmp_path) -> None:
    saved = torch.load(f"{run}/last.pt", weights_only=False)
    saved["config"].pop("data")
    torch.save(saved, tmp_path / "nodata.pt")
    error = one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "nodata.pt")])
    assert "--data" in error, error


def test_labels_that_are_all_void_have_nothing_to_score(run, data, tmp_path, capsys) -> None:
    """It printed "mIoU: nan" with exit status 0, and --json held a bare NaN."""
    void = tmp_path / "void"
    shutil.copytree(data, void)
    for label in (void / "gtFine" / "val").rglob("*_labelIds.png"):
        Image.fromarray(np.zeros((48, 96), np.uint8)).save(label)  # labelId 0: unlabeled
    error = one_line_error(capsys, ["evaluate", "--checkpoint", f"{run}/last.pt", "--data", str(void),
                                    "--json", str(tmp_path / "scores.json")])
    assert "nothing to score" in error and not (tmp_path / "scores.json").exists()


def test_json_scores_are_strict_json(run, data, tmp_path) -> None:
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert None in scores["iou"]  # the classes Synthcity never draws


def test_a_pickled_model_and_a_hand_edited_config_get_one_sentence(run, tmp_path, capsys) -> None:
    torch.save(build_pspnet("tiny"), tmp_path / "whole.pt")  # torch.save(model), not its weights
    error = one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "whole.pt")])
    assert "holds a pickled Python object (pspnet_edu.pspnet.PSPNet)" in error and "\x1b" not in error
    saved = torch.load(f"{run}/last.pt", weights_only=True)
    saved["config"]["model"]["num_classes"] = "19"
    torch.save(saved, tmp_path / "edited.pt")
    error = one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "edited.pt")])
    assert "edited.pt describes a model that cannot be built (num_classes must be an integer, got '19'" in error
