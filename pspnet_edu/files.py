"""Writing files safely and reading sizes: the two helpers every command shares.

- :func:`write_atomic` writes a file so that a reader sees either the old or the new version,
  never half of one (a temporary file with a unique name in the same folder, then
  ``os.replace``), with the permissions the user's umask gives a new file.
- :func:`parse_size` reads ``"HxW"`` (or ``"N"`` for a square) everywhere a command takes a
  size: ``--input``, ``--size``, ``--crop``.

Not a course concept: plumbing for the command line, the trainer and the experiments.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], None]


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


def write_atomic(path: str | Path, data: bytes | str | Writer) -> Path:
    """Write ``data`` (bytes, text, or a function that writes into a binary file) to ``path``.

    The content goes to a hidden temporary file with a unique name beside ``path``, which is
    then renamed over it, so an interrupted write leaves the old file intact and two writers
    never share a temporary file. Returns ``path``.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", "hello").read_text()
    'hello'
    >>> write_atomic(folder / "b.bin", lambda f: f.write(b"\\x00\\x01")).read_bytes()
    b'\\x00\\x01'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            if callable(data):
                data(file)
            else:
                file.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0600 files; a saved file follows the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | Path, what: str = "the output") -> None:
    """Fail early, with one clear sentence, if ``path`` (a folder, existing or to be made) cannot be written.

    For a folder that does not exist yet, the nearest existing parent must be a folder that
    takes new entries. Call it before the expensive work, not after.
    """
    path = Path(path)
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
