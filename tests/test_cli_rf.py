"""Tests for `pspnet-edu rf`: real numbers in the printed table (derivations in
tests/test_receptive_field.py), and one-line errors with exit status 2."""

from __future__ import annotations

import pytest

from pspnet_edu.cli import main


def _rows(output: str) -> dict[str, list[str]]:
    """node -> the other cells of its row."""
    lines = output.strip().splitlines()
    assert lines[1].split() == ["node", "op", "output", "RF", "jump", "padding"]
    return {line.split()[0]: line.split()[1:] for line in lines[2:]}


def test_resnet50_stages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rf", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnet50, input 224x224:")
    rows = _rows(out)
    assert list(rows) == ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    assert rows["conv1"] == ["Conv2d", "112x112", "7", "2", "3"]
    assert rows["layer4"] == ["Sequential", "7x7", "427", "32", "213"]


def test_dilated_resnet101_keeps_stride_8(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rf", "resnet101", "--dilated", "--input", "320x256"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["layer3"][1:] == ["40x32", "811", "8", "405"]
    assert rows["layer4"][1:] == ["40x32", "971", "8", "485"]


def test_vgg16_every_conv_and_pool(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rf", "vgg16"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert len(rows) == 13 + 5  # conv1_1 ... conv5_3 and pool1 ... pool5
    assert rows["features.28"] == ["Conv2d", "14x14", "196", "16", "90"]
    assert rows["features.30"] == ["MaxPool2d", "7x7", "212", "32", "90"]


def test_one_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rf", "alexnet", "--node", "features.12"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows == {"features.12": ["MaxPool2d", "6x6", "195", "32", "66"]}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rf", "resnet9"], "unknown model 'resnet9'; choose one of: resnet18, resnet34"),
        (["rf", "vgg16", "--dilated"], "--dilated applies to ResNets only"),
        (["rf", "resnet18", "--node", "layer5"], "unknown node 'layer5'"),
        (["rf", "resnet18", "--node", "fc"], "'flatten' (torch.flatten) collapses"),
        (
            ["rf", "vgg16", "--node", "features.30", "--input", "20x20"],
            "smallest square input that works is 32x32",
        ),
    ],
)
def test_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and captured.err.count("\n") == 1


def test_course_paper_backbone(capsys):
    # Hand recurrence (Araujo et al. 2019), deep stem + paper dilations, jump j:
    # conv1..3 (3x3, first stride 2): 3, 7, 11 (j 2); maxpool: 15 (j 4); layer1 3 blocks:
    # +3*2*4 = 39; layer2 stride 2 then 3 blocks: +8, +48 = 95 (j 8); layer3 6 blocks at
    # dilation 2 (span 5): +6*4*8 = 287; layer4 3 blocks at dilation 4 (span 9): +3*8*8 = 479.
    assert main(["rf", "pspnet-paper", "--input", "473x473"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["conv3"][3:5] == ["11", "2"]
    assert rows["layer3"][2:5] == ["60x60", "287", "8"]
    assert rows["layer4"][2:5] == ["60x60", "479", "8"]


def test_course_backbone_refuses_dilated(capsys):
    assert main(["rf", "pspnet-tiny", "--dilated"]) == 2
    assert "dilated already" in capsys.readouterr().err


def test_a_bad_input_size_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["rf", "resnet18", "--input", "224by224"])
    assert stop.value.code == 2 and "write HEIGHTxWIDTH" in capsys.readouterr().err
