"""`pspnet-edu evaluate`: the scores of a run, fp32 and bf16, sliding/flip/multi-scale, and --json safety."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cli_fixtures import data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import build_parser, main
from pspnet_edu.cli.options import inference_options
from pspnet_edu.inference import predict_probs, prepare_for_inference
from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.training.checkpoint import OLD_FORMAT, model_from_checkpoint


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


class PerPixel(torch.nn.Module):
    """A 1x1 convolution: each pixel's logits depend on that pixel alone, so windows, mirrors and smooth rescaling agree."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 5, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


class Ramp(torch.nn.Module):
    """Logits (r, -r) for a ramp r from -1 (left) to 1 (right): mirrored, class 0 and 1 swap sides."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        ramp = torch.linspace(-1, 1, x.shape[-1]).expand(x.shape[0], 1, *x.shape[-2:])
        return {"out": torch.cat([ramp, -ramp], dim=1)}


def test_sliding_windows_flip_and_scales_agree_with_whole_image_where_they_must() -> None:
    images = torch.randn(2, 3, 40, 70)
    whole = predict_probs(PerPixel().eval(), images)
    sliding = predict_probs(PerPixel().eval(), images, mode="sliding", crop=(24, 32))  # overlapping, padded windows
    torch.testing.assert_close(sliding, whole)
    torch.testing.assert_close(predict_probs(PerPixel().eval(), images, flip=True), whole)
    smooth = torch.linspace(-1, 1, 70).expand(2, 3, 40, 70)  # bilinear rescaling keeps a ramp, but for its ends
    multi = predict_probs(PerPixel().eval(), smooth, scales=(0.5, 1.0, 1.5))
    assert (multi - predict_probs(PerPixel().eval(), smooth)).abs()[..., 2:-2].max() < 0.02
    flipped = predict_probs(Ramp(), images, flip=True)  # (sigmoid(2r) + sigmoid(-2r)) / 2 = 1/2 everywhere
    torch.testing.assert_close(flipped, torch.full_like(flipped, 0.5))


def test_bf16_probabilities_are_within_a_bound_of_fp32(run) -> None:
    model = model_from_checkpoint(torch.load(f"{run}/last.pt", weights_only=True))
    images = torch.randn(2, 3, 48, 96)
    fp32 = predict_probs(prepare_for_inference(model, "fp32"), images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no fast bfloat16" on this CPU: slower, the same numbers
        bf16 = predict_probs(prepare_for_inference(model, "bf16"), images)
    assert (bf16 - fp32).abs().max() < 0.05 and not torch.equal(bf16, fp32)  # bf16 did run, and stayed close


def test_the_inference_options_reach_the_scoring_and_one_window_is_the_whole_image(run, data, capsys, tmp_path) -> None:
    scores = {}
    for name, options in {"whole": [], "window": ["--sliding", "--crop", "48x96"], "twice": ["--scales", "1", "1"]}.items():
        assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--threads", "1",
                     "--json", str(tmp_path / f"{name}.json"), *options]) == 0
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["confusion_matrix"]
    assert scores["window"] == scores["whole"] == scores["twice"]  # a 48x96 window on 48x96 images; 1 and 1 again
    args = build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--sliding", "--crop", "40", "--flip",
                                      "--scales", "0.9", "1.0"])
    assert inference_options(args, {}) == {"mode": "sliding", "crop": (40, 40), "flip": True, "scales": (0.9, 1.0)}


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


def test_evaluate_scores_the_split_val_split_names_as_train_does(run, data, capsys) -> None:
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--threads", "1",
                 "--val-split", "train"]) == 0
    on_train = capsys.readouterr().out.strip().splitlines()[-1]
    history = json.loads(open(f"{run}/history.json").read())  # training scored "val": another number
    assert on_train.startswith("mIoU: ") and on_train != f"mIoU: {history['val'][-1]['miou']:.4f}"
    error = one_line_error(capsys, ["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--val-split", "test"])
    assert "no split 'test'" in error, error
