"""Student versions of the lesson notebooks: solutions out, stubs in (nbgrader-compatible).

The notebooks in ``notebooks/`` are the *solution* notebooks: they run top to bottom and
store their outputs. An exercise marks the learner's part with nbgrader's markers::

    def my_output_size(size, kernel, stride=1, padding=0, dilation=1):
        ### BEGIN SOLUTION
        return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        ### END SOLUTION

and a check cell may hold tests the learner should not see between ``### BEGIN HIDDEN
TESTS`` and ``### END HIDDEN TESTS``. :func:`build_student_notebooks` writes the student
versions:

- each solution region (markers included) becomes ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()`` at the indentation of its BEGIN line (in a markdown cell:
  ``YOUR ANSWER HERE``), so the learner's check fails with "not implemented yet" until the
  learner fills it in;
- each hidden-tests region (markers included) is removed;
- outputs and execution counts are cleared in (a) every cell that changed and (b) every later
  code cell that mentions a name defined in an exercise (``my_output_size``): their stored
  outputs were computed from the solution (a ✓ verdict, a figure, a number) and would give
  it away. All other cells, outputs and metadata are kept as they are, so the learner still
  reads the lesson's figures before running anything.

Markers are recognised like nbgrader does (a line whose stripped text starts with the marker),
so an instructor can also run nbgrader itself on the solution notebooks. Unlike nbgrader, a
marker without its partner is an error here, naming the notebook and the cell.

Not a course concept: the instructor's tooling, run by ``pspnet-edu assignments build``.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)

# A top-level definition: "def name" / "class name" (group 1) or "name = ..." / "name: T = ..." (group 2).
_DEFINED_NAME = re.compile(r"(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)")


def strip_solutions(source: str, cell_type: str = "code", where: str = "the cell") -> str:
    """The student version of one cell's source (a pure function of the text).

    >>> src = "def f(x):\\n    ### BEGIN SOLUTION\\n    return 2 * x\\n    ### END SOLUTION\\n"
    >>> print(strip_solutions(src))
    def f(x):
        # YOUR CODE HERE
        raise NotImplementedError()
    <BLANKLINE>
    >>> print(strip_solutions("check(f)\\n### BEGIN HIDDEN TESTS\\nassert f(1) == 2\\n### END HIDDEN TESTS"))
    check(f)
    >>> strip_solutions("### END SOLUTION")
    Traceback (most recent call last):
    ValueError: the cell, line 1: '### END SOLUTION' without a '### BEGIN SOLUTION' before it; add the BEGIN marker or remove this line
    """
    stub = CODE_STUB if cell_type == "code" else MARKDOWN_STUB
    pairs = {BEGIN_SOLUTION: END_SOLUTION, BEGIN_HIDDEN_TESTS: END_HIDDEN_TESTS}
    out: list[str] = []
    open_marker: str | None = None
    open_line = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        text = line.strip()
        begin = next((m for m in pairs if text.startswith(m)), None)
        end = next((m for m in pairs.values() if text.startswith(m)), None)
        if begin:
            if open_marker:
                raise ValueError(
                    f"{where}, line {number}: {begin!r} inside the region opened by {open_marker!r} on line "
                    f"{open_line}; close it with {pairs[open_marker]!r} first (regions cannot nest)"
                )
            open_marker, open_line = begin, number
            if begin == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(f"{indent}{stub_line}\n" for stub_line in stub)
        elif end:
            if open_marker is None or pairs[open_marker] != end:
                begin_of = next(b for b, e in pairs.items() if e == end)
                raise ValueError(
                    f"{where}, line {number}: {end!r} without a {begin_of!r} before it; "
                    "add the BEGIN marker or remove this line"
                )
            open_marker = None
        elif open_marker is None:
            out.append(line)
    if open_marker:
        raise ValueError(
            f"{where}, line {open_line}: {open_marker!r} is never closed; add {pairs[open_marker]!r} after the region"
        )
    student = "".join(out)
    # The stub lines end with "\n"; drop it when the region was the end of a source without one.
    if student.endswith("\n") and not source.endswith("\n"):
        student = student[:-1]
    return student


def solution_names(source: str) -> set[str]:
    """Top-level names whose value comes from solution code in this cell.

    These are the ``def``/``class`` names whose body holds a solution region, and the
    functions, classes and variables defined at top level inside a solution region.

    >>> src = "x = 1\\ndef my_f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION\\n"
    >>> sorted(solution_names(src + "### BEGIN SOLUTION\\nmy_stride: int = 8\\n### END SOLUTION\\n"))
    ['my_f', 'my_stride']
    """
    names: set[str] = set()
    current_def: str | None = None  # the top-level def/class whose body we are reading
    in_solution = False
    for line in source.splitlines():
        text = line.strip()
        if text.startswith(BEGIN_SOLUTION):
            in_solution = True
            if current_def and line[:1].isspace():
                names.add(current_def)
            continue
        if text.startswith(END_SOLUTION):
            in_solution = False
            continue
        if not text or text.startswith("#") or line[:1].isspace():
            continue
        match = _DEFINED_NAME.match(line)  # a top-level statement
        is_def = bool(match and match.group(1))
        current_def = match.group(1) if is_def else None
        if in_solution and match:
            names.add(match.group(1) or match.group(2))
    return names


def student_notebook(notebook: nbformat.NotebookNode, name: str = "the notebook") -> nbformat.NotebookNode:
    """The student version of a notebook (a new object; ``notebook`` is left unchanged).

    ``name`` appears in error messages. Raises ValueError on unbalanced markers.
    """
    student = copy.deepcopy(notebook)
    exercise_names: set[str] = set()
    for index, cell in enumerate(student.cells):
        source = cell.source
        new_source = strip_solutions(source, cell.cell_type, where=f"{name}, cell {index}")
        changed = new_source != source
        if changed and cell.cell_type == "code":
            exercise_names |= solution_names(source)
        uses_exercise = cell.cell_type == "code" and any(
            re.search(rf"\b{re.escape(n)}\b", new_source) for n in exercise_names
        )
        cell.source = new_source
        if cell.cell_type == "code" and (changed or uses_exercise):
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(student)
    return student


def _write_atomically(notebook: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(notebook, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_student_notebook(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Read the solution notebook ``src``, write its student version to ``dst``; return ``dst``."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no notebook at {src}; pass the path of a solution notebook (.ipynb)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"refusing to overwrite the solution notebook {src} with its student version; choose another output path")
    notebook = nbformat.read(src, as_version=4)
    _write_atomically(student_notebook(notebook, name=src.name), dst)
    return dst


def build_student_notebooks(src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the student version of every ``*.ipynb`` in ``src_dir`` into ``out_dir``.

    Returns the written paths, sorted. ``out_dir`` must be neither ``src_dir`` (that would
    replace the solutions) nor inside it (nbval, run on ``notebooks/``, would collect the
    student notebooks, whose stubs fail by design). Existing student notebooks in ``out_dir``
    are replaced; every notebook is first built in memory, so unbalanced markers in any of
    them stop the build before anything is written.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"no folder {src_dir}; pass --src, the folder of the solution notebooks")
    sources = sorted(p for p in src_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not sources:
        raise FileNotFoundError(f"no .ipynb notebooks in {src_dir}; pass --src, the folder of the solution notebooks")
    src_abs, out_abs = src_dir.resolve(), out_dir.resolve()
    if out_abs == src_abs:
        raise ValueError(f"refusing to write student notebooks into {src_dir}: that would replace the solutions; pass another --out, e.g. build/student")
    if src_abs in out_abs.parents:
        raise ValueError(f"refusing to write student notebooks inside {src_dir}: nbval would collect them there; pass an --out outside it, e.g. build/student")
    students = [(student_notebook(nbformat.read(p, as_version=4), name=p.name), out_dir / p.name) for p in sources]
    for notebook, path in students:
        _write_atomically(notebook, path)
    return [path for _, path in students]
