"""Tests for pspnet_edu/assignments.py and `pspnet-edu assignments build`.

On a small fixture notebook and on every real notebook in notebooks/ that has exercises:
no solution line survives in the student version, the stub sits at the solution's
indentation, hidden tests are gone, the outputs that would reveal a solution are cleared and
everything else is intact. For the notebooks listed in EXECUTABLE, the exercise cells are
run (first code cell + exercise cell + its check cell, not the whole notebook): the student
version fails with "not implemented yet", the solution version passes.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pspnet_edu.assignments import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    build_student_notebook,
    build_student_notebooks,
    strip_solutions,
    student_notebook,
)
from pspnet_edu.cli import main

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REAL_WITH_EXERCISES = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if BEGIN_SOLUTION in p.read_text(encoding="utf-8"))
# Notebooks whose exercise cells need only the first code cell to run, and run in about a
# second. Authors: add yours here when that holds; the others get the static checks.
EXECUTABLE = {
    "01_receptive_fields.ipynb",
    "02_dilated_convolutions.ipynb",
    "03_dilated_resnet.ipynb",
    "04_pyramid_pooling_module.ipynb",
    "05_pspnet.ipynb",
    "06_cityscapes_data.ipynb",
    "07_training.ipynb",
    "08_evaluation.ipynb",
}


def code(source: str, outputs: list | None = None, count: int | None = None) -> nbformat.NotebookNode:
    return new_code_cell(source, outputs=outputs or [], execution_count=count)


def stream(text: str) -> nbformat.NotebookNode:
    return new_output("stream", name="stdout", text=text)


def fixture_notebook() -> nbformat.NotebookNode:
    cells = [
        code("from pspnet_edu.checks._core import Case, check_cases", count=1),
        new_markdown_cell("Why double?\n\n### BEGIN SOLUTION\nBecause two is twice one.\n### END SOLUTION"),
        code(
            "def my_double(x):\n    ### BEGIN SOLUTION\n    twice = 2 * x\n    return twice\n    ### END SOLUTION\n",
            count=2,
        ),
        code(
            'check_cases(my_double, lambda x: 2 * x, [Case((1,)), Case((3,))], against="2x")\n'
            "### BEGIN HIDDEN TESTS\nassert my_double(50) == 100\n### END HIDDEN TESTS",
            [stream("✓ my_double matches 2x on 2 cases\n")],
            3,
        ),
        code("print('the lesson goes on')", [stream("the lesson goes on\n")], 4),
        code("my_double(21)", [new_output("execute_result", data={"text/plain": "42"}, execution_count=5)], 5),
        code(
            "class MyBox:\n    def area(self, w, h):\n        ### BEGIN SOLUTION\n        return w * h\n        ### END SOLUTION\n"
            "### BEGIN SOLUTION\nmy_answer = 8\n### END SOLUTION",
            count=6,
        ),
        code("print(my_answer + 1)", [stream("9\n")], 7),
    ]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.validate(notebook)
    return notebook


def solution_lines(source: str) -> list[str]:
    """The stripped, non-trivial lines inside solution and hidden-test regions, markers included."""
    lines, inside = [], False
    for line in source.splitlines():
        text = line.strip()
        if text.startswith(("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")):
            inside = True
        if inside and len(text) > 3:  # skip lone brackets
            lines.append(text)
        if text.startswith(("### END SOLUTION", "### END HIDDEN TESTS")):
            inside = False
    return lines


def assert_student_version(solution: nbformat.NotebookNode, student: nbformat.NotebookNode) -> None:
    """The static properties of a student notebook, cell by cell."""
    nbformat.validate(student)
    assert len(student.cells) == len(solution.cells)
    for index, (sol, stu) in enumerate(zip(solution.cells, student.cells)):
        where = f"cell {index}"
        assert stu.cell_type == sol.cell_type, where
        student_lines = {line.strip() for line in stu.source.splitlines()}
        for line in solution_lines(sol.source):
            assert line not in student_lines, f"{where}: solution line {line!r} survived"
        assert "HIDDEN TESTS" not in stu.source and "SOLUTION" not in stu.source, where
        if stu.source != sol.source:
            if sol.cell_type == "code":
                assert stu.outputs == [] and stu.execution_count is None, f"{where}: outputs not cleared"
                for line in sol.source.splitlines():
                    if line.strip().startswith(BEGIN_SOLUTION):
                        indent = line[: len(line) - len(line.lstrip())]
                        assert f"{indent}raise NotImplementedError()" in stu.source.splitlines(), where
                        assert f"{indent}# YOUR CODE HERE" in stu.source.splitlines(), where
        elif sol.cell_type == "code" and stu.outputs:
            assert stu.outputs == sol.outputs and stu.execution_count == sol.execution_count, where
        assert stu.metadata == sol.metadata, where


def run_cells(sources: list[str]) -> str:
    """exec the sources in one fresh namespace; return what they printed."""
    namespace: dict = {"__name__": "__exercise__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for source in sources:
            exec(compile(source, "<cell>", "exec"), namespace)
    return printed.getvalue()


def exercise_cells(notebook: nbformat.NotebookNode) -> list[tuple[int, int]]:
    """(exercise cell index, check cell index): each code cell with a solution and the next code cell."""
    codes = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    return [
        (i, next(j for j in codes if j > i))
        for i in codes
        if BEGIN_SOLUTION in notebook.cells[i].source and any(j > i for j in codes)
    ]


# ---------------------------------------------------------------- the fixture notebook


def test_strip_solutions_keeps_the_indentation_of_the_begin_line():
    source = "def f(x):\n    if x:\n        ### BEGIN SOLUTION\n        return 1\n        ### END SOLUTION\n    return 0\n"
    assert strip_solutions(source) == (
        "def f(x):\n    if x:\n        # YOUR CODE HERE\n        raise NotImplementedError()\n    return 0\n"
    )
    assert strip_solutions("### BEGIN SOLUTION\nThe answer.\n### END SOLUTION", "markdown") == "YOUR ANSWER HERE"
    assert strip_solutions("no markers\n") == "no markers\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "line 1: '### BEGIN SOLUTION' is never closed"),
        ("x = 1\n### END SOLUTION\n", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "line 2: '### BEGIN SOLUTION' inside the region"),
        ("### BEGIN SOLUTION\nx\n### END HIDDEN TESTS\n", "line 3: '### END HIDDEN TESTS' without"),
    ],
)
def test_unbalanced_markers_are_clear_errors(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source)


def test_fixture_student_notebook(tmp_path):
    solution = fixture_notebook()
    student = student_notebook(solution, "fixture.ipynb")
    assert_student_version(solution, student)
    cells = student.cells
    assert cells[2].source == "def my_double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert cells[3].source == 'check_cases(my_double, lambda x: 2 * x, [Case((1,)), Case((3,))], against="2x")'
    assert cells[1].source == "Why double?\n\nYOUR ANSWER HERE"
    assert cells[6].source.endswith("\n        raise NotImplementedError()\n# YOUR CODE HERE\nraise NotImplementedError()")
    # Outputs computed from solutions are cleared (the verdict, my_double(21), my_answer + 1) ...
    for index in (3, 5, 7):
        assert cells[index].outputs == [] and cells[index].execution_count is None, index
    # ... and the rest is intact.
    assert cells[4] == solution.cells[4]
    assert cells[0] == solution.cells[0]
    assert solution.cells[2].source.count("twice") == 2  # the input notebook was not modified


def test_fixture_checks_fail_for_the_student_and_pass_for_the_solution(tmp_path):
    solution = fixture_notebook()
    student = student_notebook(solution)
    exercise, check = exercise_cells(solution)[0]
    assert (exercise, check) == (2, 3)
    sources = lambda nb: [nb.cells[0].source, nb.cells[exercise].source, nb.cells[check].source]  # noqa: E731
    assert run_cells(sources(solution)) == "✓ my_double matches 2x on 2 cases\n"
    with pytest.raises(AssertionError, match="my_double is not implemented yet"):
        run_cells(sources(student))


def test_build_writes_valid_notebooks_atomically_and_the_cli_reports_them(tmp_path, capsys):
    src, out = tmp_path / "notebooks", tmp_path / "build" / "student"
    src.mkdir()
    nbformat.write(fixture_notebook(), src / "01_fixture.ipynb")
    nbformat.write(new_notebook(cells=[code("1 + 1", [], None)]), src / "00_plain.ipynb")
    before = {p.name: p.read_bytes() for p in src.iterdir()}

    assert main(["assignments", "build", "--src", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / '00_plain.ipynb'}" in printed and "2 student notebooks" in printed
    assert sorted(p.name for p in out.iterdir()) == ["00_plain.ipynb", "01_fixture.ipynb"]  # no temp files left
    assert_student_version(fixture_notebook(), nbformat.read(out / "01_fixture.ipynb", as_version=4))
    assert nbformat.read(out / "00_plain.ipynb", as_version=4).cells[0].source == "1 + 1"
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # the solutions are untouched

    # A rebuild replaces the student notebooks.
    assert build_student_notebooks(src, out) == [out / "00_plain.ipynb", out / "01_fixture.ipynb"]


def test_build_refuses_to_touch_the_solutions(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(fixture_notebook(), src / "01_fixture.ipynb")
    before = (src / "01_fixture.ipynb").read_bytes()
    with pytest.raises(ValueError, match="would replace the solutions"):
        build_student_notebooks(src, src)
    with pytest.raises(ValueError, match="nbval would collect them"):
        build_student_notebooks(src, src / "student")
    with pytest.raises(ValueError, match="refusing to overwrite the solution notebook"):
        build_student_notebook(src / "01_fixture.ipynb", src / "01_fixture.ipynb")
    assert main(["assignments", "build", "--src", str(src), "--out", str(src)]) == 2
    assert "pspnet-edu assignments: error: refusing" in capsys.readouterr().err
    assert (src / "01_fixture.ipynb").read_bytes() == before
    assert sorted(p.name for p in src.iterdir()) == ["01_fixture.ipynb"]


def test_build_reports_unbalanced_markers_with_notebook_and_cell_and_writes_nothing(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "out"
    src.mkdir()
    nbformat.write(fixture_notebook(), src / "01_good.ipynb")
    broken = fixture_notebook()
    broken.cells[2].source = broken.cells[2].source.replace("    ### END SOLUTION\n", "")
    nbformat.write(broken, src / "02_broken.ipynb")
    with pytest.raises(ValueError, match=r"02_broken.ipynb, cell 2, line 2: '### BEGIN SOLUTION' is never closed"):
        build_student_notebooks(src, out)
    assert not out.exists()


def test_build_needs_notebooks(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        build_student_notebooks(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"no \.ipynb notebooks"):
        build_student_notebooks(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------- the real notebooks


@pytest.mark.parametrize("path", REAL_WITH_EXERCISES, ids=lambda p: p.name)
def test_real_notebook_student_version(path):
    solution = nbformat.read(path, as_version=4)
    assert_student_version(solution, student_notebook(solution, path.name))
    assert exercise_cells(solution), f"{path.name}: an exercise cell needs a check cell after it"


@pytest.mark.parametrize("path", [p for p in REAL_WITH_EXERCISES if p.name in EXECUTABLE], ids=lambda p: p.name)
def test_real_notebook_checks_fail_for_the_student_and_pass_for_the_solution(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("TQDM_DISABLE", "1")  # first cells set it; monkeypatch restores the old value
    monkeypatch.chdir(path.parent)  # where nbval runs the notebook
    solution = nbformat.read(path, as_version=4)
    student = student_notebook(solution, path.name)
    first = next(i for i, c in enumerate(solution.cells) if c.cell_type == "code")
    for exercise, check in exercise_cells(solution):
        cells = [first, exercise, check]
        printed = run_cells([solution.cells[i].source for i in cells])
        assert "✓" in printed, f"{path.name} cells {cells}: the solution's check printed no verdict"
        with pytest.raises((AssertionError, NotImplementedError)) as info:
            run_cells([student.cells[i].source for i in cells])
        assert info.type is NotImplementedError or "not implemented yet" in str(info.value), str(info.value)
