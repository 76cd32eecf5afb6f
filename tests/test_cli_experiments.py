"""`pspnet-edu demo` and `pspnet-edu ablate`: the table, the figure, the seed, and reading runs back."""

from __future__ import annotations

import json
import re

from cli_fixtures import SMALL, data, one_line_error, restore_threads  # noqa: F401 (fixtures)
from pspnet_edu.cli import main


def test_demo_command(data, tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--data", data, "--out", str(out), *SMALL, "--seed", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mIoU: [01]\.\d{4}", lines[-1])
    assert any("<- context" in line for line in lines)
    assert (out / "demo.png").stat().st_size > 10_000
    assert (out / "pspnet" / "seed3" / "last.pt").is_file()  # --seed reaches the runs
    results = json.loads((out / "results.json").read_text())
    assert set(results["settings"]) == {"pspnet", "baseline"}
    assert results["settings"]["baseline"]["config"]["model"]["use_ppm"] is False
    assert main(["demo", "--data", data, "--out", str(out), *SMALL, "--seed", "3"]) == 0  # read back, same line
    assert capsys.readouterr().out.strip().splitlines()[-1] == lines[-1]


def test_ablate_commands(data, tmp_path, capsys) -> None:
    out = tmp_path / "ppm"
    assert main(["ablate", "ppm", "--variants", "none", "B1-avg", "--num-seeds", "1", "--data", data,
                 "--out", str(out), *SMALL]) == 0
    assert (out / "ppm.png").is_file()
    assert set(json.loads((out / "results.json").read_text())["settings"]) == {"none", "B1-avg"}
    assert main(["ablate", "alpha", "--alphas", "0", "--num-seeds", "1", "--data", data, "--out", str(tmp_path / "a"),
                 *SMALL]) == 0
    assert (tmp_path / "a" / "alpha.png").is_file()
    assert "unknown variant" in one_line_error(capsys, ["ablate", "ppm", "--variants", "B7", "--data", data,
                                                        "--out", str(out), *SMALL])


def test_ablate_curves_command(data, tmp_path, capsys) -> None:
    out, small = tmp_path / "curves", SMALL[2:]  # without --iters
    assert main(["ablate", "curves", "--variants", "none", "--steps", "1", "2", "--num-seeds", "1", "--eval-every", "1",
                 "--data", data, "--out", str(out), *small]) == 0
    curves = json.loads((out / "results.json").read_text())["curves"]
    assert curves["none"][0]["iteration"] == [1, 2] and curves["none"][0]["erf"]["iteration"] == [0, 1, 2]
    assert (out / "curves.png").is_file() and (out / "none" / "seed0" / "step1.pt").is_file()
    kept = tmp_path / "kept.json"
    kept.write_text((out / "results.json").read_text())
    again = ["ablate", "curves", "--variants", "none", "--steps", "1", "2", "--num-seeds", "1", "--eval-every", "1",
             "--data", data, *small, "--reuse"]
    assert main([*again, str(kept), "--out", str(tmp_path / "more")]) == 0
    assert not (tmp_path / "more" / "none").exists()  # its one seed was in the file: nothing trained
    assert json.loads((tmp_path / "more" / "results.json").read_text())["curves"] == json.loads(kept.read_text())["curves"]
    assert "copy it aside" in one_line_error(capsys, [*again, str(out / "results.json"), "--out", str(out)])
    assert "set by --steps" in one_line_error(capsys, ["ablate", "curves", "--iters", "5", "--data", data,
                                                       "--out", str(out)])
    assert "increasing" in one_line_error(capsys, ["ablate", "curves", "--steps", "4", "2", "--data", data,
                                                   "--out", str(out)])


def test_demo_into_a_file_is_one_sentence_before_any_work(data, tmp_path, capsys) -> None:
    """It trained first, then failed with "[Errno 20] Not a directory: 'afile/baseline'"."""
    (tmp_path / "afile").write_text("x")
    error = one_line_error(capsys, ["demo", "--data", data, "--out", str(tmp_path / "afile"), *SMALL])
    assert "afile is a file, not a folder" in error and "Errno" not in error
