"""Tests for pspnet_edu/assignments.py and `pspnet-edu assignments build` / `tag`.

On a small fixture notebook and on every real notebook in notebooks/ that has exercises:
no solution line survives in the student version, the stub sits at the solution's
indentation, hidden tests are gone, the outputs that would reveal a solution are cleared and
everything else is intact. For the notebooks listed in EXECUTABLE, the exercise cells are
run (first code cell + exercise cell + its check cell, not the whole notebook): the student
version fails with "not implemented yet", the solution version passes. A build never replaces
a notebook already in --out without --force.

nbgrader's cell metadata (`tag`): the roles and grade ids on the fixture, clear errors where
nbgrader would misread a notebook, and on copies of the real notebooks: only the metadata
changes, a second run changes no byte, `--check` names the first stale notebook. The round
trip through nbgrader itself is in test_nbgrader.py.

Answer keys: every lesson 01-10 has one Questions cell and, right after it, one markdown answer
cell per question (a model answer in a solution region), tagged as a manually graded answer of 1
point; the student build has exactly one `YOUR ANSWER HERE` stub per question.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pspnet_edu.assignments import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    MARKDOWN_STUB,
    POINTS_PER_ANSWER,
    POINTS_PER_CHECK,
    build_student_notebook,
    build_student_notebooks,
    grade_id_prefix,
    strip_solutions,
    student_notebook,
    tag_notebook,
    tag_notebooks,
)
from pspnet_edu.cli import main
from pspnet_edu.files import new_file_mode

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REAL_WITH_EXERCISES = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if BEGIN_SOLUTION in p.read_text(encoding="utf-8"))
# The lessons 01-10: each ends with a "Questions" cell (a numbered list) and one answer cell per question.
LESSONS = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if re.match(r"(0[1-9]|10)_", p.name))
QUESTIONS_HEADING = re.compile(r"^#{2,3} Questions[ \t]*$", re.MULTILINE)
QUESTION_ITEM = re.compile(r"^(\d+)\. ", re.MULTILINE)
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
    "10_scaling_up.ipynb",
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


def lesson_questions(notebook: nbformat.NotebookNode, name: str) -> tuple[int, int]:
    """(index of the lesson's one Questions cell, number of questions in its numbered list 1, 2, ...)."""
    found = [(i, m) for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and (m := QUESTIONS_HEADING.search(c.source))]
    assert len(found) == 1, f"{name}: {len(found)} 'Questions' cells (markdown headed '## Questions' or '### Questions'), not one"
    index, heading = found[0]
    numbers = [int(n) for n in QUESTION_ITEM.findall(notebook.cells[index].source[heading.end():])]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 3, f"{name}: questions numbered {numbers}"
    return index, len(numbers)


def answer_cells(notebook: nbformat.NotebookNode, name: str) -> list[int]:
    """The indices of the answer cells, which must follow the Questions cell, one per question, in order."""
    index, count = lesson_questions(notebook, name)
    answers = list(range(index + 1, index + 1 + count))
    assert answers[-1] < len(notebook.cells), f"{name}: {count} questions but fewer cells after them"
    for k, i in enumerate(answers, start=1):
        source = notebook.cells[i].source
        assert notebook.cells[i].cell_type == "markdown", f"{name}, cell {i}: answer {k} must be a markdown cell"
        assert source.startswith(f"**Answer {k}.**\n\n{BEGIN_SOLUTION}\n") and source.endswith(END_SOLUTION), (
            f"{name}, cell {i}: answer {k} should read '**Answer {k}.**', a blank line, then the model answer "
            "between the solution markers"
        )
        model_answer = source[source.index(BEGIN_SOLUTION) + len(BEGIN_SOLUTION):-len(END_SOLUTION)].strip()
        assert len(model_answer) > 100, f"{name}, cell {i}: answer {k} holds no real model answer"
    return answers


def nbgrader_roles(notebook: nbformat.NotebookNode) -> dict[int, tuple[str, str] | None]:
    """Each cell's nbgrader role ("solution", "tests", "manual") and grade id; None: no metadata."""
    roles: dict[int, tuple[str, str] | None] = {}
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            roles[index] = None
            continue
        assert meta["schema_version"] == 3 and meta["task"] is False, index
        assert meta["locked"] is (meta["grade"] and not meta["solution"]), index  # only test cells are locked
        assert ("points" in meta) is meta["grade"], index
        role = {(True, False): "solution", (False, True): "tests", (True, True): "manual"}[(meta["solution"], meta["grade"])]
        roles[index] = (role, meta["grade_id"])
    return roles


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

    # A rebuild replaces the student notebooks only when asked to (see the --force test).
    assert build_student_notebooks(src, out, force=True) == [out / "00_plain.ipynb", out / "01_fixture.ipynb"]


def test_build_never_replaces_a_learners_notebook_without_force(tmp_path, capsys):
    src, out = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    nbformat.write(fixture_notebook(), src / "01_fixture.ipynb")
    nbformat.write(new_notebook(cells=[code("1 + 1")]), src / "02_plain.ipynb")
    out.mkdir()
    learner = fixture_notebook()
    learner.cells[2].source = "def my_double(x):\n    return x + x  # the learner's work\n"
    nbformat.write(learner, out / "02_plain.ipynb")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    nbformat.write(new_notebook(cells=[code("'my own notebook'")]), out / "99_mine.ipynb")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    # Refused before anything is written: not even 01_fixture.ipynb, which is not there yet.
    with pytest.raises(FileExistsError, match=r"02_plain.ipynb already exists .* pass --force to overwrite it"):
        build_student_notebooks(src, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["assignments", "build", "--src", str(src), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "02_plain.ipynb already exists" in error and "--force" in error
    with pytest.raises(FileExistsError, match="--force"):
        build_student_notebook(src / "02_plain.ipynb", out / "02_plain.ipynb")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # --force replaces the notebooks it writes, and only those.
    assert main(["assignments", "build", "--src", str(src), "--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01_fixture.ipynb", "02_plain.ipynb", "99_mine.ipynb", "notes.txt"]
    assert nbformat.read(out / "02_plain.ipynb", as_version=4).cells[0].source == "1 + 1"
    assert {n: (out / n).read_bytes() for n in ("99_mine.ipynb", "notes.txt")} == {
        n: before[n] for n in ("99_mine.ipynb", "notes.txt")
    }
    assert (out / "01_fixture.ipynb").stat().st_mode & 0o777 == new_file_mode()  # the umask's, not mkstemp's 0o600
    assert build_student_notebook(src / "02_plain.ipynb", out / "02_plain.ipynb", force=True) == out / "02_plain.ipynb"


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


NBFORMAT_3_WITH_A_BAD_OUTPUT = (
    '{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [{"cell_type": "code", '
    '"input": "x = 1", "language": "python", "metadata": {}, "outputs": [{"output_type": "pyerr"}]}]}]}'
)


@pytest.mark.parametrize("content, message", [
    (NBFORMAT_3_WITH_A_BAD_OUTPUT, "'ename' is a required property"),  # was a jsonschema traceback
    ('{"cells": [', "Notebook does not appear to be JSON"),  # did not name the file
])
def test_a_notebook_nbformat_cannot_read_is_named_in_one_line(tmp_path, capsys, content, message):
    src = tmp_path / "notebooks"
    src.mkdir()
    (src / "03_old.ipynb").write_text(content, encoding="utf-8")
    assert main(["assignments", "build", "--src", str(src), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "03_old.ipynb is not a valid Jupyter notebook" in error and message in error
    assert "save it again" in error and not (tmp_path / "out").exists()


def test_an_out_blocked_by_a_file_is_one_sentence(tmp_path, capsys):
    """Not "[Errno 17] File exists: 'afile'" or "[Errno 20] Not a directory"."""
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(fixture_notebook(), src / "01_fixture.ipynb")
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "student"):
        assert main(["assignments", "build", "--src", str(src), "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "afile is a file, not a folder" in error and "Errno" not in error


# ---------------------------------------------------------------- nbgrader metadata (tag)


def test_tag_fixture_notebook():
    solution = fixture_notebook()
    solution.cells[4].metadata["nbgrader"] = {"grade": False, "locked": True, "solution": False, "grade_id": "old", "schema_version": 3}
    tagged = tag_notebook(solution, "01_fixture.ipynb")
    assert nbgrader_roles(tagged) == {
        0: None,
        1: ("manual", "01-answer-1"),
        2: ("solution", "01-my_double"),
        3: ("tests", "01-check-my_double"),  # check_cases(...) with hidden tests
        4: None,  # stale metadata removed
        5: None,
        6: ("solution", "01-MyBox"),  # the first name it defines; no check cell follows: not scored
        7: None,
    }
    assert tagged.cells[1].metadata["nbgrader"]["points"] == POINTS_PER_ANSWER
    assert tagged.cells[3].metadata["nbgrader"] == {
        "grade": True, "grade_id": "01-check-my_double", "locked": True, "points": POINTS_PER_CHECK,
        "schema_version": 3, "solution": False, "task": False,
    }
    assert "nbgrader" in solution.cells[4].metadata and "nbgrader" not in solution.cells[2].metadata  # input unchanged
    # Only the nbgrader metadata changes, and tagging again changes nothing.
    for before, after in zip(solution.cells, tagged.cells):
        assert {k: v for k, v in after.items() if k != "metadata"} == {k: v for k, v in before.items() if k != "metadata"}
        assert {k: v for k, v in after.metadata.items() if k != "nbgrader"} == {
            k: v for k, v in before.metadata.items() if k != "nbgrader"
        }
    assert tag_notebook(tagged, "01_fixture.ipynb") == tagged
    assert nbformat.writes(tag_notebook(tagged, "01_fixture.ipynb")) == nbformat.writes(tagged)


def test_tag_grade_ids_are_readable_unique_and_ordered():
    exercise = "def my_f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    notebook = new_notebook(cells=[
        code(exercise), code("check_f(my_f)"),
        code(exercise), code("### BEGIN HIDDEN TESTS\nassert my_f(1) == 1\n### END HIDDEN TESTS"),  # hidden tests only
        code("### BEGIN SOLUTION\nprint(2)\n### END SOLUTION"), code("check_printed()"),  # defines no name
        new_markdown_cell("### BEGIN SOLUTION\nOne.\n### END SOLUTION"), new_markdown_cell("### BEGIN SOLUTION\nTwo.\n### END SOLUTION"),
    ])
    assert [r and r[1] for r in nbgrader_roles(tag_notebook(notebook, "10_scaling_up.ipynb")).values()] == [
        "10-my_f", "10-check-my_f", "10-my_f-2", "10-check-my_f-2", "10-exercise-1", "10-check-exercise-1",
        "10-answer-1", "10-answer-2",
    ]
    assert grade_id_prefix("07_training.ipynb") == "07" and grade_id_prefix("Lesson (draft).ipynb") == "Lesson_draft"


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([code("x = 1  # BEGIN SOLUTION")], r"lesson.ipynb, cell 0, line 1: 'x = 1  # BEGIN SOLUTION' mentions a marker without being one"),
        ([new_markdown_cell("Put it between `### BEGIN SOLUTION` and ...")], "cell 0, line 1: .* mentions a marker"),
        ([code("print(1)"), code("### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS")], "cell 1: hidden tests outside a check cell"),
        ([new_markdown_cell("### BEGIN HIDDEN TESTS\nx\n### END HIDDEN TESTS")], "cell 0: hidden tests in a markdown cell"),
        ([code("### BEGIN SOLUTION\nx = 1\n")], "cell 0, line 1: '### BEGIN SOLUTION' is never closed"),
    ],
)
def test_tag_refuses_what_nbgrader_would_misread(cells, message):
    with pytest.raises(ValueError, match=message):
        tag_notebook(new_notebook(cells=cells), "lesson.ipynb")


def test_tag_cli_writes_only_metadata_once_and_check_names_the_stale_notebook(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    for path in NOTEBOOKS.glob("*.ipynb"):  # untagged copies: the real notebooks are only read
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            cell.metadata.pop("nbgrader", None)
        nbformat.write(notebook, src / path.name)
    (src / "05_pspnet.ipynb").chmod(0o664)
    originals = {p.name: nbformat.read(p, as_version=4) for p in sorted(src.glob("*.ipynb"))}

    assert main(["assignments", "tag", "--src", str(src), "--check"]) == 2  # untagged
    error = capsys.readouterr().err
    first_stale = next(p for p in REAL_WITH_EXERCISES).name
    assert error.count("\n") == 1 and f"{src / first_stale}: nbgrader metadata missing or stale" in error
    assert {p.name: nbformat.read(p, as_version=4) for p in sorted(src.glob("*.ipynb"))} == originals  # --check writes nothing

    assert main(["assignments", "tag", "--src", str(src)]) == 0
    assert f"{len(REAL_WITH_EXERCISES)} notebooks retagged" in capsys.readouterr().out
    for name, original in originals.items():
        tagged = nbformat.read(src / name, as_version=4)
        assert tagged.metadata == original.metadata and len(tagged.cells) == len(original.cells), name
        for index, (before, after) in enumerate(zip(original.cells, tagged.cells)):
            assert (after.source, after.get("outputs")) == (before.source, before.get("outputs")), f"{name} cell {index}"
            assert {k: v for k, v in after.metadata.items() if k != "nbgrader"} == before.metadata, f"{name} cell {index}"
        assert tagged == tag_notebook(original, name)
    assert (src / "05_pspnet.ipynb").stat().st_mode & 0o777 == 0o664  # the mode survives the in-place rewrite

    # A second run changes no byte; --check passes.
    tagged_bytes = {p.name: p.read_bytes() for p in src.iterdir()}
    assert tag_notebooks(src) == []
    assert main(["assignments", "tag", "--src", str(src), "--check"]) == 0
    assert {p.name: p.read_bytes() for p in src.iterdir()} == tagged_bytes

    # An exercise renamed without retagging: --check names that notebook.
    stale = REAL_WITH_EXERCISES[-1].name
    notebook = nbformat.read(src / stale, as_version=4)
    cell = next(c for c in notebook.cells if BEGIN_SOLUTION in c.source)
    cell.source = cell.source.replace("def my_", "def my_renamed_", 1)
    nbformat.write(notebook, src / stale)
    capsys.readouterr()
    assert main(["assignments", "tag", "--src", str(src), "--check"]) == 2
    assert f"{src / stale}: nbgrader metadata missing or stale; run `pspnet-edu assignments tag --src {src}`" in capsys.readouterr().err
    assert tag_notebooks(src) == [src / stale]


# ---------------------------------------------------------------- the real notebooks


def test_real_notebooks_are_tagged_for_nbgrader(capsys):
    """The committed solutions carry up-to-date nbgrader metadata (rerun `assignments tag`)."""
    assert main(["assignments", "tag", "--src", str(NOTEBOOKS), "--check"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", REAL_WITH_EXERCISES, ids=lambda p: p.name)
def test_real_notebook_student_version(path):
    solution = nbformat.read(path, as_version=4)
    student = student_notebook(solution, path.name)
    assert_student_version(solution, student)
    assert exercise_cells(solution), f"{path.name}: an exercise cell needs a check cell after it"
    # Tagged for nbgrader, the solution gives the same student version, metadata aside.
    tagged = tag_notebook(solution, path.name)
    student_of_tagged = student_notebook(tagged, path.name)
    assert_student_version(tagged, student_of_tagged)
    assert [(c.source, c.outputs if c.cell_type == "code" else None) for c in student_of_tagged.cells] == [
        (c.source, c.outputs if c.cell_type == "code" else None) for c in student.cells
    ]
    # Every exercise is scored: its check cell is an autograded test cell.
    roles = nbgrader_roles(tagged)
    for exercise, check in exercise_cells(solution):
        assert roles[exercise][0] == "solution" and roles[check] == ("tests", roles[exercise][1].replace("-", "-check-", 1)), (
            f"{path.name}: cells {exercise} and {check}"
        )


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


# ---------------------------------------------------------------- the questions and their answer keys


def test_lessons_01_to_10_are_the_lessons_with_questions():
    assert [p.name[:2] for p in LESSONS] == [f"{n:02d}" for n in range(1, 11)]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_question_has_a_manually_graded_answer_cell(path):
    """One answer cell per question, right after the Questions cell; nbgrader grades each by hand, 1 point."""
    solution = nbformat.read(path, as_version=4)
    answers = answer_cells(solution, path.name)
    prefix = grade_id_prefix(path.name)
    manual = {i: role for i, role in nbgrader_roles(solution).items() if role and role[0] == "manual"}
    assert manual == {i: ("manual", f"{prefix}-answer-{k}") for k, i in enumerate(answers, start=1)}, (
        f"{path.name}: the manually graded cells should be exactly the answer cells (run `pspnet-edu assignments tag`)"
    )
    assert all(solution.cells[i].metadata.nbgrader.points == POINTS_PER_ANSWER == 1 for i in answers)


def test_student_build_has_one_answer_stub_per_question(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["assignments", "build", "--src", str(NOTEBOOKS), "--out", str(out)]) == 0
    capsys.readouterr()
    for path in LESSONS:
        solution = nbformat.read(path, as_version=4)
        _, count = lesson_questions(solution, path.name)
        student = nbformat.read(out / path.name, as_version=4)
        stubs = [i for i, c in enumerate(student.cells) if c.cell_type == "markdown" and MARKDOWN_STUB[0] in c.source]
        assert stubs == answer_cells(solution, path.name), f"{path.name}: {len(stubs)} answer stubs for {count} questions"
        for k, i in enumerate(stubs, start=1):
            assert student.cells[i].source == f"**Answer {k}.**\n\n{MARKDOWN_STUB[0]}", f"{path.name}, cell {i}"
        assert_student_version(solution, student)  # no line of a model answer survives


# ---------------------------------------------------------------- student copies run where they are put

RELATIVE_TO_NOTEBOOKS = re.compile(r"""["']\.\./""")  # a string literal "../...": a path from notebooks/


def test_lessons_read_the_course_files_by_course_file_not_from_notebooks():
    """A student copy (build/student/, nbgrader's release/LESSON/) runs in another folder than notebooks/."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            code = [line.split("#")[0] for line in cell.source.splitlines()] if cell.cell_type == "code" else []
            found = [line.strip() for line in code if RELATIVE_TO_NOTEBOOKS.search(line)]
            assert not found, f"{path.name}, cell {index}: {found[0]!r}: use pspnet_edu.files.course_file"


@pytest.mark.parametrize("name", ["00_welcome.ipynb", "08_evaluation.ipynb"])  # they read checkpoints and results
def test_a_student_copy_built_elsewhere_runs_to_its_exercises(name, tmp_path):
    """Every error of the student copy, run in build/student/, is an exercise left to the learner."""
    from nbclient import NotebookClient

    out = tmp_path / "build" / "student"
    student = build_student_notebook(NOTEBOOKS / name, out / name)
    notebook = nbformat.read(student, as_version=4)
    NotebookClient(notebook, timeout=300, allow_errors=True, resources={"metadata": {"path": str(out)}}).execute()
    errors = [(index, output.ename, output.evalue) for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert all(ename == "NotImplementedError" or "not implemented yet" in evalue for _, ename, evalue in errors), errors
    assert bool(errors) == (BEGIN_SOLUTION in (NOTEBOOKS / name).read_text(encoding="utf-8")), errors
