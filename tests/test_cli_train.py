"""The train / evaluate / predict / demo commands, end to end on a few tiny synthetic images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from pspnet_edu.cli import main
from pspnet_edu.data.synthetic import generate_synthetic

SMALL = ["--iters", "2", "--batch-size", "2", "--crop", "48", "96", "--threads", "1"]


@pytest.fixture(autouse=True)
def restore_threads():
    """`--threads 1` sets torch's thread count for the whole process: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return str(generate_synthetic(tmp_path_factory.mktemp("data") / "synth", train=4, val=2, size=(48, 96)))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("runs") / "run"
    threads = torch.get_num_threads()
    assert main(["train", "--data", data, "--out", str(out), *SMALL]) == 0
    torch.set_num_threads(threads)  # module-scoped: the autouse fixture does not cover it
    return str(out)


def test_train_writes_checkpoint_and_history(run) -> None:
    checkpoint = torch.load(f"{run}/last.pt", weights_only=True)
    assert {"model", "iteration", "config"} <= checkpoint.keys() and checkpoint["iteration"] == 2
    history = json.loads(open(f"{run}/history.json").read())
    assert history["val"][-1]["iteration"] == 2 and len(history["val"][-1]["iou"]) == 19


def test_evaluate_prints_per_class_iou_and_final_miou(run, data, capsys, tmp_path) -> None:
    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--threads", "1",
                 "--json", str(tmp_path / "scores.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", lines[-1]), lines[-1]
    assert any(line.startswith("road") for line in lines)
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert f"mIoU: {scores['miou']:.4f}" == lines[-1]
    # the same number as the training run's final evaluation
    history = json.loads(open(f"{run}/history.json").read())
    assert lines[-1] == f"mIoU: {history['val'][-1]['miou']:.4f}"

    assert main(["evaluate", "--checkpoint", f"{run}/last.pt", "--data", data, "--sliding", "--crop", "48", "64",
                 "--flip", "--scales", "0.9", "1.0", "--threads", "1"]) == 0
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", capsys.readouterr().out.strip().splitlines()[-1])


def test_predict_writes_masks_and_overlays(run, data, tmp_path, capsys) -> None:
    images = sorted((Path(data) / "leftImg8bit" / "val").glob("*/*.png"))
    out = tmp_path / "pred"
    assert main(["predict", "--checkpoint", f"{run}/last.pt", *map(str, images), "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 * len(images) and all(name.endswith(".png") for name in written)
    from PIL import Image

    assert Image.open(out / written[0]).size == (96, 48)
    assert main(["predict", "--checkpoint", f"{run}/last.pt", str(images[0]), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["train", "--alpha", "-1"], "alpha"),
        (["train", "--iters", "0"], "iters"),
        (["train", "--resume"], "nothing to resume"),
        (["train", "--data", "/nonexistent/folder"], "does not exist"),
        (["evaluate", "--checkpoint", "/nonexistent/last.pt"], "does not exist"),
    ],
)
def test_bad_input_gives_one_line_and_status_2(arguments, message, tmp_path, capsys) -> None:
    if arguments[0] == "train":
        arguments = [*arguments, "--out", str(tmp_path / "run")]
        if "--data" not in arguments:
            arguments += ["--data", str(tmp_path)]  # never reached for the config errors
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_corrupt_checkpoint(tmp_path, capsys) -> None:
    (tmp_path / "last.pt").write_bytes(b"\x00garbage")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "last.pt")]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_checkpoint_of_another_class_count(tmp_path, capsys) -> None:
    from pspnet_edu.pspnet import build_pspnet

    model = build_pspnet("tiny", num_classes=5)
    import dataclasses

    torch.save({"model": model.state_dict(), "model_config": dataclasses.asdict(model.config), "config": {}},
               tmp_path / "last.pt")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "last.pt")]) == 2
    assert "5 classes" in capsys.readouterr().err


def test_demo_command(data, tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--data", data, "--out", str(out), *SMALL]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", lines[-1])
    assert any("<- context" in line for line in lines)
    assert (out / "demo.png").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    assert set(results["settings"]) == {"pspnet", "baseline"}
    assert results["settings"]["baseline"]["changes"]["overrides"] == {"use_ppm": False}
    # a second run reuses the finished runs and prints the same final line
    assert main(["demo", "--data", data, "--out", str(out), *SMALL]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == lines[-1]


def test_ablate_commands(data, tmp_path, capsys) -> None:
    out = tmp_path / "ppm"
    assert main(["ablate", "ppm", "--variants", "none", "B1-avg", "--seeds", "1", "--data", data,
                 "--out", str(out), *SMALL]) == 0
    assert (out / "ppm.png").is_file() and set(json.loads((out / "results.json").read_text())["settings"]) == {
        "none", "B1-avg"}
    assert main(["ablate", "alpha", "--alphas", "0", "--seeds", "1", "--data", data, "--out", str(tmp_path / "a"),
                 *SMALL]) == 0
    assert (tmp_path / "a" / "alpha.png").is_file()
    assert main(["ablate", "ppm", "--variants", "B7", "--data", data, "--out", str(out), *SMALL]) == 2
    assert "unknown variant" in capsys.readouterr().err
