"""Writing files safely and reading sizes: the helpers every command shares.

- :func:`write_atomic` writes a file so that a reader sees either the old or the new version,
  never half of one (a temporary file with a unique name in the same folder, then
  ``os.replace``), with the permissions the user's umask gives a new file. A full disk is
  said in one sentence that says the old file is intact, and the temporary file a killed
  earlier write left behind is removed by the next write of the same file.
- :func:`parse_size` reads ``"HxW"`` (or ``"N"`` for a square) everywhere a command takes a
  size: ``--input``, ``--size``, ``--crop``.
- :func:`check_writable`, :func:`check_no_link_loop` and :func:`describe_os_error` turn what
  the operating system refuses into one sentence that names the path and the fix.
- :func:`strict_json` writes JSON that every reader parses (no bare NaN).
- :func:`course_file` finds a file of the course's repository (its checkpoints, its results)
  wherever the caller runs: a lesson copied elsewhere (a student version, an nbgrader course
  folder) reads the same files as the lesson in ``notebooks/``.

Not a course concept: plumbing for the command line, the trainer and the experiments.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

Writer = Callable[[BinaryIO], None]

TEMP_SUFFIX = ".tmp"
REPOSITORY = Path(__file__).resolve().parents[1]  # the clone the package is installed from (pip install -e .)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set and put it back at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 without the umask bits."""
    return 0o666 & ~_umask()


def new_dir_mode() -> int:
    """The mode ``mkdir`` would give a new folder: 0o777 without the umask bits."""
    return 0o777 & ~_umask()


def write_atomic(path: str | Path, data: bytes | str | Writer, keep_mode: bool = False) -> Path:
    """Write ``data`` (bytes, text, or a function that writes into a binary file) to ``path``.

    The new file gets the mode the umask gives a new file, or with ``keep_mode`` the mode of the
    file it replaces (a file rewritten in place, e.g. a notebook whose metadata is updated).

    The content goes to a hidden temporary file with a unique name beside ``path``, which is
    then renamed over it, so an interrupted write leaves the old file intact and two writers
    never share a temporary file. A full disk raises an OSError that says so and that the old
    file is intact; the temporaries of earlier writers that were killed are removed first
    (:func:`remove_stale_temporaries`). Returns ``path``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", "hello").read_text()
    'hello'
    >>> write_atomic(folder / "b.bin", lambda f: f.write(b"\\x00\\x01")).read_bytes()
    b'\\x00\\x01'
    """
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if keep_mode and path.is_file() else new_file_mode()
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            if callable(data):
                data(file)
            else:  # surrogateescape: a file name read from the disk is written back byte for byte
                file.write(data.encode(errors="surrogateescape") if isinstance(data, str) else data)
        os.chmod(tmp, mode)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(error):
            kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
            raise OSError(f"cannot write {path}: the disk is full (no space left on device); {kept}: free some "
                          "space, then run the command again") from error
        raise
    return path


def _disk_full(error: BaseException) -> bool:
    """True if ``error`` or what caused it is a full disk or quota.

    torch.save reports a failed write as a RuntimeError ("unexpected pos ...") whose context
    is the OSError, so the whole chain is searched.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def temporary_prefix(path: str | Path) -> str:
    """The name start of the temporary files and folders written beside ``path``: ``.NAME.HOST.PID.``.

    Host and process id let :func:`remove_stale_temporaries` tell the leftovers of a killed
    writer from the files of one still writing (on this machine or another sharing the disk).
    """
    return f".{Path(path).name}.{socket.gethostname()}.{os.getpid()}."


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporaries that killed writers of ``path`` left beside it; return them.

    Only names of :func:`temporary_prefix`'s pattern ending in ``.tmp`` are considered, and
    only those of a process of this machine that no longer runs: a ``kill -9`` during a write
    leaves one behind, which nobody else would ever remove.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(.+)\.(\d+)\.[^.]+{re.escape(TEMP_SUFFIX)}")
    removed = []
    for candidate in path.parent.glob(f".*{TEMP_SUFFIX}"):
        match = pattern.fullmatch(candidate.name)
        if match and match.group(1) == socket.gethostname() and not _process_runs(int(match.group(2))):
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    return True


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so that clean-up code runs.

    SIGTERM's default action ends the process at once, running no ``finally`` or ``except``
    block: a temporary folder being built would stay behind. Outside the main thread (where
    Python allows no handlers) it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def strict_json(value: Any, **options: Any) -> str:
    """``json.dumps`` for files other programs read: NaN and infinities become ``null``.

    Python writes a bare ``NaN``, which is not JSON: a browser, ``jq`` or ``json.loads`` with
    strict settings refuses the whole file.

    >>> strict_json({"miou": float("nan"), "iou": [0.5, float("inf")]})
    '{"miou": null, "iou": [0.5, null]}'
    """
    return json.dumps(_finite(value), allow_nan=False, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def course_file(relative: str | os.PathLike[str]) -> Path:
    """The file or folder ``relative`` of the course's repository, e.g. ``"data/checkpoints/pspnet_tiny.pt"``.

    The lessons read the committed checkpoints and results through it, not by a path relative to
    ``notebooks/``, which a student copy in ``build/student/`` or nbgrader's
    ``release/LESSON/`` would not find. One sentence if the file is not there.

    >>> course_file("results/ablate_ppm.json").relative_to(REPOSITORY).as_posix()
    'results/ablate_ppm.json'
    """
    path = (REPOSITORY / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(REPOSITORY) or not path.exists():
        raise FileNotFoundError(f"{Path(relative).as_posix()} is not a file of the course's repository {REPOSITORY}: "
                                "give a path inside it (data/checkpoints/..., results/...), and install the package "
                                "from a clone of the course (pip install -e .)")
    return path


def check_writable(path: str | Path, what: str = "the output") -> None:
    """Fail early, with one clear sentence, if ``path`` (a folder, existing or to be made) cannot be written.

    For a folder that does not exist yet, the nearest existing parent must be a folder that
    takes new entries. Call it before the expensive work, not after.
    """
    path = Path(path)
    check_no_link_loop(path, what)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise FileExistsError(f"{what} {path}: {existing} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".pspnet-edu-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise PermissionError(f"{what} {path}: cannot write into {existing} ({error.strerror or error}); "
                              "choose a folder you can write to") from None


def check_no_link_loop(path: str | Path, what: str) -> None:
    """Raise a FileNotFoundError naming ``what`` if ``path`` runs into a symbolic link that leads back to itself.

    ``Path.exists()`` is False for such a path, so without this check a command would say
    that it "does not exist" (or fail deep inside pathlib), which hides the link to remove.
    """
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileNotFoundError(f"{what} {path} is a symbolic link loop (a link that leads back to itself); "
                                    "remove the link or pass the real folder") from None


_FIXES = {
    errno.EACCES: "you may not write there: choose a folder you can write to",
    errno.EPERM: "you may not write there: choose a folder you can write to",
    errno.EROFS: "the disk is read-only: choose a folder on a writable disk",
    errno.EEXIST: "a file of that name is in the way: move it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder: pass a file name",
    errno.ENOSPC: "the disk is full: free some space, then run the command again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run the command again",
    errno.ELOOP: "a symbolic link on the path leads back to itself: remove it or pass the real path",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ENOENT: "check the path",
}


def describe_os_error(error: OSError) -> str:
    """One sentence with a fix for an OSError straight from the system; other errors as they are.

    The system's own text ("[Errno 30] Read-only file system: 'out'") names neither the
    cause in plain words nor what to do.

    >>> describe_os_error(OSError(errno.EROFS, "Read-only file system", "out/model.pt"))
    'out/model.pt: read-only file system; the disk is read-only: choose a folder on a writable disk'
    >>> describe_os_error(OSError("cannot write x: the disk is full"))
    'cannot write x: the disk is full'
    """
    if error.errno is None or not error.strerror:
        return str(error)
    where = f"{error.filename}: " if error.filename else ""
    fix = _FIXES.get(error.errno, "check the path and its permissions")
    return f"{where}{error.strerror[0].lower()}{error.strerror[1:]}; {fix}"


_SIZE = re.compile(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?")


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """``"128x256"`` -> ``(128, 256)`` (height x width); ``"224"`` -> ``(224, 224)``.

    Both sides must be positive integers; anything else raises a ValueError that names
    ``what`` (e.g. ``"--crop"``) and shows the expected form.

    >>> parse_size("128x256"), parse_size("224")
    ((128, 256), (224, 224))
    >>> parse_size("0x5", "--crop")
    Traceback (most recent call last):
    ValueError: --crop '0x5' is not a size: write HEIGHTxWIDTH with positive integers, e.g. 128x256
    """
    match = _SIZE.fullmatch(text)
    height = int(match.group(1)) if match else 0
    width = int(match.group(2) or match.group(1)) if match else 0
    if height < 1 or width < 1:
        raise ValueError(f"{what} {text!r} is not a size: write HEIGHTxWIDTH with positive integers, e.g. 128x256")
    return height, width
