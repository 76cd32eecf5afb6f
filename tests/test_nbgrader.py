"""The round trip through nbgrader itself (nbgrader >= 0.9, in the [dev] extra).

One temporary course folder (module scope) holds, tagged by
:func:`pspnet_edu.assignments.tag_notebook`, every lesson of notebooks/ that has an exercise
and the fixture notebook of test_assignments.py, as ``source/LESSON/LESSON.ipynb``; the files
in notebooks/ are only read.

- ``nbgrader generate_assignment`` releases them all (one process for all of them). For each:
  nbgrader's own validator accepts the metadata, no solution line survives, and cell by cell
  the released sources equal those of :func:`student_notebook` (what ``pspnet-edu assignments
  build`` writes), with the outputs of the exercise and check cells cleared in both.
- In the release of every lesson 01-10, each question's answer cell is a ``YOUR ANSWER HERE``
  stub, a manually graded answer worth 1 point, and no other markdown cell is graded.
- ``nbgrader autograde`` on LIGHT_LESSON with two submissions: the solution notebook itself
  gets full marks; the released, unfilled notebook gets no point, each check failing with
  "not implemented yet".

nbgrader runs in subprocesses (``sys.executable -m nbgrader``), in a kernel of this Python.
The autograde executes the whole lesson twice: LIGHT_LESSON is the cheapest lesson to run
(measured: 02 about 6 s; 04 12 s, 05 14 s, 03 20 s, 01 22 s). About 30 s in all on 2 busy cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="nbgrader is in the [dev] extra: pip install -e '.[dev]'")

from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.nbgraderformat import MetadataValidator  # noqa: E402
from test_assignments import LESSONS as QUESTION_LESSONS  # noqa: E402
from test_assignments import answer_cells, fixture_notebook, solution_lines  # noqa: E402

from pspnet_edu.assignments import BEGIN_SOLUTION, MARKDOWN_STUB, student_notebook, tag_notebook  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
LESSONS = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if BEGIN_SOLUTION in p.read_text(encoding="utf-8"))
LIGHT_LESSON = "02_dilated_convolutions"
KERNEL = "pspnet-edu-test"  # a kernel spec of this Python, written into the course folder
COURSE_ID = "pspnet-edu"
GENERATE_TIMEOUT_S = 120  # the whole release: about 5 s
AUTOGRADE_TIMEOUT_S = 300  # two executions of LIGHT_LESSON: about 20 s
CELL_TIMEOUT_S = 120  # nbgrader's default (30 s) is short on a busy machine


def nbgrader(course: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in the course folder with this Python; fail with its log if it fails."""
    env = {
        **os.environ,
        # nbgrader runs the `alembic` script from PATH when it creates the gradebook: this venv's.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "JUPYTER_PATH": str(course / "jupyter"),  # where KERNEL is
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),  # the kernel imports pspnet_edu
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "TQDM_DISABLE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def errors(path: Path) -> list[str]:
    """The errors in an executed notebook, one line each, to say why a score is low."""
    notebook = nbformat.read(path, as_version=4)
    return [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "error"
    ]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course folder with every lesson (and the fixture) in source/, released by nbgrader."""
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.Execute.kernel_name = {KERNEL!r}  # this Python, whatever kernels the machine has\n"
        f"c.Execute.timeout = {CELL_TIMEOUT_S}\n",
        encoding="utf-8",
    )
    kernel = root / "jupyter" / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "pspnet-edu tests", "language": "python"}
    (kernel / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    solutions = {p.stem: nbformat.read(p, as_version=4) for p in LESSONS} | {"fixture": fixture_notebook()}
    for name, notebook in solutions.items():
        (root / "source" / name).mkdir(parents=True)
        nbformat.write(tag_notebook(notebook, f"{name}.ipynb"), root / "source" / name / f"{name}.ipynb")
    # "*": nbgrader globs the assignment id, so one process releases every lesson (one per lesson: ~3 s each).
    nbgrader(root, "generate_assignment", "*", timeout=GENERATE_TIMEOUT_S)
    return root


@pytest.mark.parametrize("name", [p.stem for p in LESSONS] + ["fixture"])
def test_released_notebook_agrees_with_the_student_version(course, name):
    solution = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
    MetadataValidator().validate_nb(solution)
    released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    ours = student_notebook(solution, f"{name}.ipynb")
    assert [c.cell_type for c in released.cells] == [c.cell_type for c in solution.cells]
    graded = 0
    for index, (sol, rel, stu) in enumerate(zip(solution.cells, released.cells, ours.cells)):
        where = f"{name}, cell {index}"
        assert rel.source == stu.source, where  # the same stubs, the same hidden tests removed
        released_lines = {line.strip() for line in rel.source.splitlines()}
        for line in solution_lines(sol.source):
            assert line not in released_lines, f"{where}: solution line {line!r} was released"
        meta = sol.metadata.get("nbgrader")
        if sol.cell_type == "code" and meta:  # exercise and check cells: no output from the solution
            assert rel.outputs == stu.outputs == [] and rel.execution_count is stu.execution_count is None, where
        if meta and meta["grade"]:
            graded += 1
            assert rel.metadata.nbgrader.grade_id == meta["grade_id"], where
    assert graded, f"{name}: no graded cell"


@pytest.mark.parametrize("name", [p.stem for p in QUESTION_LESSONS])
def test_release_holds_one_manually_graded_answer_per_question(course, name):
    """nbgrader's release of lessons 01-10 keeps each answer cell as a stub, manually graded, 1 point."""
    assert name in {p.stem for p in LESSONS}, f"{name} has questions but no exercise, so the course fixture did not release it"
    solution = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    answers = answer_cells(solution, name)  # the cells after the Questions cell, one per question
    released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    manual = [i for i, c in enumerate(released.cells) if c.metadata.get("nbgrader", {}).get("solution")
              and c.metadata.nbgrader.get("grade") and c.cell_type == "markdown"]
    assert manual == answers, f"{name}: manually graded cells {manual}, answer cells {answers}"
    for k, i in enumerate(answers, start=1):
        cell = released.cells[i]
        assert cell.source == f"**Answer {k}.**\n\n{MARKDOWN_STUB[0]}", f"{name}, cell {i}"
        assert (cell.metadata.nbgrader.grade_id, cell.metadata.nbgrader.points) == (f"{name[:2]}-answer-{k}", 1), f"{name}, cell {i}"


def test_autograde_gives_the_solution_full_marks_and_the_unfilled_release_none(course):
    lesson = LIGHT_LESSON
    submissions = {
        "solution": course / "source" / lesson / f"{lesson}.ipynb",
        "released": course / "release" / lesson / f"{lesson}.ipynb",
    }
    for student, notebook in submissions.items():
        (course / "submitted" / student / lesson).mkdir(parents=True)
        (course / "submitted" / student / lesson / f"{lesson}.ipynb").write_bytes(notebook.read_bytes())
    nbgrader(course, "autograde", lesson, timeout=AUTOGRADE_TIMEOUT_S)

    checks = [c for c in nbformat.read(submissions["solution"], as_version=4).cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    points = sum(c.metadata.nbgrader.points for c in checks)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        scores = {}
        for student in submissions:
            graded = gradebook.find_submission_notebook(lesson, lesson, student)
            scores[student] = (graded.code_score, graded.max_code_score)
    executed = {student: course / "autograded" / student / lesson / f"{lesson}.ipynb" for student in submissions}
    assert points > 0 and scores["solution"] == (points, points), (
        f"the solution should get full marks, not {scores['solution']}; its errors: {errors(executed['solution'])}"
    )
    assert scores["released"] == (0, points), f"the unfilled notebook should get no point, not {scores['released']}"
    for cell in nbformat.read(executed["released"], as_version=4).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            failures = [o for o in cell.outputs if o.output_type == "error"]
            assert failures and "not implemented yet" in failures[0].evalue, cell.metadata.nbgrader.grade_id
