"""`pspnet-edu predict`: masks and overlays, no output lost to a name clash, a memory bound."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_fixtures import data, one_line_error, restore_threads, run  # noqa: F401 (fixtures)
from pspnet_edu.cli import main
from pspnet_edu.cli.predict import output_names


def val_images(data: str) -> list[Path]:
    return sorted((Path(data) / "leftImg8bit" / "val").glob("*/*.png"))


def test_predict_writes_masks_and_overlays_and_refuses_to_overwrite(run, data, tmp_path, capsys) -> None:
    images = val_images(data)
    out = tmp_path / "pred"
    assert main(["predict", *map(str, images), "--checkpoint", f"{run}/last.pt", "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 * len(images) and all(name.endswith(".png") for name in written)
    assert Image.open(out / written[0]).size == (96, 48)
    assert "--force" in one_line_error(capsys, ["predict", str(images[0]), "--checkpoint", f"{run}/last.pt",
                                                "--out", str(out)])
    assert main(["predict", str(images[0]), "--checkpoint", f"{run}/last.pt", "--out", str(out), "--force"]) == 0


def test_images_of_the_same_name_in_two_folders_get_two_results(run, data, tmp_path, capsys) -> None:
    image = val_images(data)[0]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(image, tmp_path / folder / "x.png")
    out = tmp_path / "pred"
    assert main(["predict", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "--checkpoint",
                 f"{run}/last.pt", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a__x_overlay.png", "a__x_pred_color.png",
                                                     "b__x_overlay.png", "b__x_pred_color.png"]


def test_an_image_too_large_for_the_memory_is_refused_with_the_size_and_the_sliding_hint(run, tmp_path, capsys) -> None:
    Image.new("RGB", (4000, 2000)).save(tmp_path / "huge.png")
    error = one_line_error(capsys, ["predict", str(tmp_path / "huge.png"), "--checkpoint", f"{run}/last.pt",
                                    "--out", str(tmp_path / "pred"), "--max-memory", "0.2"])
    assert "2000x4000" in error and "GB" in error and "--sliding --crop 512x1024" in error
    assert not list((tmp_path / "pred").glob("*")) if (tmp_path / "pred").exists() else True


def test_missing_images_and_unwritable_outputs(run, tmp_path, capsys) -> None:
    assert "not found" in one_line_error(capsys, ["predict", str(tmp_path / "no.png"), "--checkpoint",
                                                  f"{run}/last.pt", "--out", str(tmp_path)])
    (tmp_path / "file").write_text("x")
    Image.new("RGB", (96, 48)).save(tmp_path / "img.png")
    assert "is a file" in one_line_error(capsys, ["predict", str(tmp_path / "img.png"), "--checkpoint",
                                                  f"{run}/last.pt", "--out", str(tmp_path / "file" / "pred")])


def test_a_memory_budget_that_is_no_positive_number_is_refused(run, tmp_path, capsys) -> None:
    Image.new("RGB", (96, 48)).save(tmp_path / "img.png")
    for budget in ("inf", "nan", "-1", "0"):
        with pytest.raises(SystemExit) as stop:  # the parser's usage line, then its one-line error
            main(["predict", str(tmp_path / "img.png"), "--checkpoint", f"{run}/last.pt",
                  "--out", str(tmp_path / "pred"), "--max-memory", budget])
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert stop.value.code == 2 and "--max-memory" in error and ("positive" in error or "finite" in error), error
    assert not (tmp_path / "pred").exists()


def test_an_empty_sliding_window_is_refused(run, tmp_path, capsys) -> None:
    Image.new("RGB", (96, 48)).save(tmp_path / "img.png")
    for crop in ("0x0", "-8x16"):
        with pytest.raises(SystemExit) as stop:  # the parser's usage line, then its one-line error
            main(["predict", str(tmp_path / "img.png"), "--checkpoint", f"{run}/last.pt",
                  "--out", str(tmp_path / "pred"), "--sliding", f"--crop={crop}"])
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert stop.value.code == 2 and "--crop" in error and "is not a size" in error, error


def test_output_names_never_collide_and_never_hang() -> None:
    """Same stem in one folder, and a name another image's name already takes: it hung, or wrote one file twice."""
    assert output_names([Path("a/x.png"), Path("a/x.jpg")]) == {Path("a/x.png"): "x_png", Path("a/x.jpg"): "x_jpg"}
    names = output_names([Path("a/x.png"), Path("b/x.png"), Path("a__x.png")])
    assert names == {Path("a/x.png"): "a__x", Path("b/x.png"): "b__x", Path("a__x.png"): "a__x_png"}
    with pytest.raises(ValueError, match="a/x.png is given twice; pass each image once"):
        output_names([Path("a/x.png"), Path("a/x.png")])
    with pytest.raises(ValueError, match="and a/x.png are the same file"):
        output_names([Path("a/x.png"), Path("a/../a/x.png")])


def test_colliding_inputs_get_one_result_each(run, data, tmp_path, capsys) -> None:
    image = val_images(data)[0]
    (tmp_path / "a").mkdir()
    shutil.copy(image, tmp_path / "a" / "x.png")
    Image.open(image).save(tmp_path / "a" / "x.jpg")
    shutil.copy(image, tmp_path / "a__x.png")
    out = tmp_path / "pred"
    assert main(["predict", str(tmp_path / "a" / "x.png"), str(tmp_path / "a" / "x.jpg"), str(tmp_path / "a__x.png"),
                 "--checkpoint", f"{run}/last.pt", "--out", str(out)]) == 0
    assert len(list(out.iterdir())) == 6
    assert "given twice" in one_line_error(capsys, ["predict", str(image), str(image), "--checkpoint",
                                                    f"{run}/last.pt", "--out", str(tmp_path / "again")])


def test_a_16_bit_grey_image_is_predicted_as_it_looks(run, tmp_path, capsys, monkeypatch) -> None:
    """It was read as all 255: predict ran on a white image."""
    gradient = (np.linspace(0, 65535, 48 * 96).reshape(48, 96)).astype(np.uint16)
    Image.fromarray(gradient).save(tmp_path / "grey16.png")
    seen = []
    monkeypatch.setattr("pspnet_edu.cli.predict.overlay", lambda rgb, labels: seen.append(rgb) or rgb)
    assert main(["predict", str(tmp_path / "grey16.png"), "--checkpoint", f"{run}/last.pt",
                 "--out", str(tmp_path / "pred")]) == 0
    assert seen[0].min() == 0 and seen[0].max() == 255 and len(np.unique(seen[0])) > 200
