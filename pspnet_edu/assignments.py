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

A marker is a line whose stripped text starts with it. nbgrader reads any line that merely
*contains* ``BEGIN SOLUTION`` (etc.) as a marker, so :func:`tag_notebook` refuses a line that
mentions a marker without being one: both tools then cut exactly the same regions. Unlike
nbgrader, a marker without its partner is an error here, naming the notebook and the cell.
:func:`build_student_notebooks` never replaces a notebook already in the output folder (it may
hold a learner's work) unless ``force=True``.

nbgrader itself (``nbgrader generate_assignment``, ``nbgrader autograde``) also needs cell
metadata. :func:`tag_notebook` derives it from the markers, so the markers stay the one
source of truth and ``pspnet-edu assignments tag`` rewrites it whenever an exercise changes
(``--check`` in CI says when someone forgot). The convention, nbgrader schema version 3:

- a code cell with a solution region is an *autograded answer* (``solution``), id
  ``07-my_poly_lr``;
- the code cell right after it, which calls a ``check_...(...)`` and/or holds hidden tests, is
  an *autograder tests* cell (``grade``, ``locked``, ``points`` = POINTS_PER_CHECK), id
  ``07-check-my_poly_lr``;
- a markdown cell with a solution region is a *manually graded answer* (nbgrader requires
  ``solution`` and ``grade`` together on markdown; ``points`` = POINTS_PER_ANSWER), id
  ``07-answer-1``;
- every other cell gets no ``nbgrader`` key.

The prefix is the notebook's number (``07`` for ``07_training.ipynb``; the whole stem for a
name without one), the rest is the first name the exercise defines (the learner's function or
class), so ids are readable in nbgrader's gradebook and stable while the exercise keeps its
name. Answer cells are numbered in notebook order. Other cells get no metadata: nbgrader
neither locks nor checks them, and the solution notebooks keep their usual look. (Locking
them as "read-only" would only restore the lesson's own cells at autograding time, at the
price of an id on every cell.)

Not a course concept: the instructor's tooling, run by ``pspnet-edu assignments build`` and
``pspnet-edu assignments tag``.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat

from pspnet_edu.files import check_writable, write_atomic

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)

NBGRADER_SCHEMA_VERSION = 3  # the cell-metadata schema of nbgrader 0.7-0.9 (nbgrader/nbgraderformat/v3.json)
POINTS_PER_CHECK = 1  # every check cell is worth the same: a lesson's score counts the exercises it passes
POINTS_PER_ANSWER = 1  # a written answer weighs like an exercise; the instructor grades it by hand
# What nbgrader takes for a marker: any line that contains one of these (ClearSolutions, ClearHiddenTests).
_NBGRADER_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
_CHECK_CALL = re.compile(r"\bcheck_\w*\s*\(")  # check_output_size(my_output_size), check_cases(...)
_NOTEBOOK_NUMBER = re.compile(r"(\d+)(?:[_\-. ]|$)")  # "07" in "07_training"

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


def grade_id_prefix(name: str) -> str:
    """The notebook's part of its grade ids: its number, else its stem, in nbgrader's id alphabet.

    >>> grade_id_prefix("07_training.ipynb"), grade_id_prefix("fixture.ipynb"), grade_id_prefix("my lesson.ipynb")
    ('07', 'fixture', 'my_lesson')
    """
    stem = Path(name).stem
    match = _NOTEBOOK_NUMBER.match(stem)
    return match.group(1) if match else _id_safe(stem)


def _id_safe(text: str) -> str:
    """``text`` in the alphabet nbgrader allows in a grade id (letters, digits, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "notebook"


def _has_marker(source: str, marker: str) -> bool:
    return any(line.strip().startswith(marker) for line in source.splitlines())


def _refuse_stray_delimiters(source: str, where: str) -> None:
    """Raise if a line mentions a marker without being one: nbgrader would cut the cell there."""
    markers = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if any(d in line for d in _NBGRADER_DELIMITERS) and not text.startswith(markers):
            raise ValueError(
                f"{where}, line {number}: {text!r} mentions a marker without being one, and nbgrader would "
                "read it as one; start the line with the marker or reword it"
            )


def _exercise_name(source: str) -> str | None:
    """The first name (in source order) that the exercise's solution defines, e.g. ``my_poly_lr``."""
    positions = {n: m.start() for n in solution_names(source) if (m := re.search(rf"\b{re.escape(n)}\b", source))}
    return min(positions, key=positions.__getitem__) if positions else None


def _nbgrader_cell(grade_id: str, *, solution: bool, grade: bool, points: int | None = None) -> dict[str, object]:
    """One cell's ``metadata.nbgrader``, with the keys nbgrader 0.9's assignment editor writes."""
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": grade and not solution,  # nbgrader restores locked cells from the source when autograding
        "schema_version": NBGRADER_SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if grade:  # nbgrader: "points ... only present if grade is true"
        meta["points"] = points
    return meta


def tag_notebook(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with nbgrader's cell metadata derived from its markers.

    ``name`` is the notebook's file name: it gives the grade ids their prefix and appears in
    error messages. Only ``cell.metadata["nbgrader"]`` changes (see the module docstring for
    the convention): it is set on the exercise, check and answer cells and removed from every
    other cell, so tagging a tagged notebook changes nothing. An exercise whose next code cell
    neither calls a ``check_...(...)`` nor holds hidden tests is a solution cell nbgrader does
    not score. Raises ValueError on unbalanced markers, a line that mentions a marker without
    being one, and hidden tests anywhere but in a check cell.

    >>> from nbformat.v4 import new_code_cell, new_notebook
    >>> nb = new_notebook(cells=[new_code_cell("def my_f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION"),
    ...                          new_code_cell("check_f(my_f)"), new_code_cell("my_f(1)")])
    >>> [c.metadata.get("nbgrader", {}).get("grade_id") for c in tag_notebook(nb, "02_lesson.ipynb").cells]
    ['02-my_f', '02-check-my_f', None]
    """
    tagged = copy.deepcopy(notebook)
    prefix = grade_id_prefix(name)
    roles: dict[int, dict[str, object]] = {}  # cell index -> its metadata.nbgrader
    keys: set[str] = set()  # exercise keys used so far: "my_f", "my_f-2", "exercise-1"
    unnamed = answers = 0
    waiting: str | None = None  # the key of the exercise whose check cell comes next
    for index, cell in enumerate(tagged.cells):
        where = f"{name}, cell {index}"
        source = cell.source
        strip_solutions(source, cell.cell_type, where)  # raises on unbalanced markers
        _refuse_stray_delimiters(source, where)
        has_solution, has_hidden = _has_marker(source, BEGIN_SOLUTION), _has_marker(source, BEGIN_HIDDEN_TESTS)
        if cell.cell_type != "code":
            if has_hidden:
                raise ValueError(f"{where}: hidden tests in a {cell.cell_type} cell; move them into the check cell after the exercise")
            if has_solution:
                answers += 1
                roles[index] = _nbgrader_cell(f"{prefix}-answer-{answers}", solution=True, grade=True, points=POINTS_PER_ANSWER)
            continue
        if waiting is not None and not has_solution and (has_hidden or _CHECK_CALL.search(source)):
            roles[index] = _nbgrader_cell(f"{prefix}-check-{waiting}", solution=False, grade=True, points=POINTS_PER_CHECK)
            waiting = None
            continue
        waiting = None  # the exercise before, if any, has no check cell
        if has_hidden:
            raise ValueError(
                f"{where}: hidden tests outside a check cell; nbgrader grades them only in the code cell "
                "right after an exercise, so move them there"
            )
        if has_solution:
            exercise = _exercise_name(source)
            if exercise is None:
                unnamed += 1
            key = base = _id_safe(exercise) if exercise else f"exercise-{unnamed}"
            copies = 1
            while key in keys:  # the same name defined by two exercises: my_f, my_f-2
                copies += 1
                key = f"{base}-{copies}"
            keys.add(key)
            roles[index] = _nbgrader_cell(f"{prefix}-{key}", solution=True, grade=False)
            waiting = key
    for index, cell in enumerate(tagged.cells):
        if index in roles:
            cell.metadata["nbgrader"] = roles[index]
        else:
            cell.metadata.pop("nbgrader", None)
    nbformat.validate(tagged)
    return tagged


def _write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Atomically, keeping the mode of the notebook it replaces (nbformat.write's text, final newline included)."""
    text = nbformat.writes(notebook)
    write_atomic(path, text if text.endswith("\n") else f"{text}\n", keep_mode=True)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook as nbformat 4; any problem is a ValueError that names ``path``.

    nbformat raises its own types (a jsonschema error with a page of schema for an invalid
    cell, e.g. in a notebook converted from nbformat 3; "does not appear to be JSON" for a
    truncated file) and names no file.
    """
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except OSError:  # unreadable: the system's error says why
        raise
    except Exception as error:  # NotJSONError, ValidationError, UnicodeDecodeError, a v3 the converter trips on
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ValueError(f"{path} is not a valid Jupyter notebook ({detail}); open it in Jupyter and save it again "
                         "(which writes nbformat 4), or fix or remove it") from None
    return notebook


def _exists_message(paths: list[Path]) -> str:
    more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
    return f"{paths[0]}{more} already exists and may hold a learner's work; move it away, or pass --force to overwrite it"


def build_student_notebook(src: str | os.PathLike[str], dst: str | os.PathLike[str], force: bool = False) -> Path:
    """Read the solution notebook ``src``, write its student version to ``dst``; return ``dst``.

    Raises FileExistsError if ``dst`` exists, unless ``force``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"no notebook at {src}; pass the path of a solution notebook (.ipynb)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"refusing to overwrite the solution notebook {src} with its student version; choose another output path")
    notebook = student_notebook(read_notebook(src), name=src.name)
    if dst.exists() and not force:
        raise FileExistsError(_exists_message([dst]))
    _write_notebook(notebook, dst)
    return dst


def _solution_notebooks(src_dir: Path) -> list[Path]:
    """The ``*.ipynb`` in ``src_dir``, sorted; FileNotFoundError if there are none."""
    if not src_dir.is_dir():
        raise FileNotFoundError(f"no folder {src_dir}; pass --src, the folder of the solution notebooks")
    sources = sorted(p for p in src_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not sources:
        raise FileNotFoundError(f"no .ipynb notebooks in {src_dir}; pass --src, the folder of the solution notebooks")
    return sources


def build_student_notebooks(
    src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], force: bool = False
) -> list[Path]:
    """Write the student version of every ``*.ipynb`` in ``src_dir`` into ``out_dir``.

    Returns the written paths, sorted. ``out_dir`` must be neither ``src_dir`` (that would
    replace the solutions) nor inside it (nbval, run on ``notebooks/``, would collect the
    student notebooks, whose stubs fail by design). A notebook of the same name already in
    ``out_dir`` may be a learner's work: FileExistsError, unless ``force``, which replaces
    those notebooks only (other files in ``out_dir`` stay). Every notebook is first built in
    memory and every target checked, so an error stops the build before anything is written.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    sources = _solution_notebooks(src_dir)
    check_writable(out_dir, "--out")  # before the work; also names a symbolic link loop
    src_abs, out_abs = src_dir.resolve(), out_dir.resolve()
    if out_abs == src_abs:
        raise ValueError(f"refusing to write student notebooks into {src_dir}: that would replace the solutions; pass another --out, e.g. build/student")
    if src_abs in out_abs.parents:
        raise ValueError(f"refusing to write student notebooks inside {src_dir}: nbval would collect them there; pass an --out outside it, e.g. build/student")
    students = [(student_notebook(read_notebook(p), name=p.name), out_dir / p.name) for p in sources]
    existing = [path for _, path in students if path.exists()]
    if existing and not force:
        raise FileExistsError(_exists_message(existing))
    for notebook, path in students:
        _write_notebook(notebook, path)
    return [path for _, path in students]


def tag_notebooks(src_dir: str | os.PathLike[str], check_only: bool = False) -> list[Path]:
    """Rewrite in place the nbgrader metadata of every ``*.ipynb`` in ``src_dir`` (see :func:`tag_notebook`).

    Returns the notebooks whose metadata was missing or stale, sorted; only those are written
    (so a second run writes nothing), and with ``check_only`` none is. Every notebook is
    tagged in memory first, so an error in any of them stops the run before anything is written.
    """
    stale = []
    for path in _solution_notebooks(Path(src_dir)):
        notebook = read_notebook(path)
        tagged = tag_notebook(notebook, path.name)
        if tagged != notebook:
            stale.append((tagged, path))
    if not check_only:
        for tagged, path in stale:
            _write_notebook(tagged, path)
    return [path for _, path in stale]
