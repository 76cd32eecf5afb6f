"""The run folder: what it holds, when a run may write into it, and a lock so that two runs never share one.

A run folder (``--out``) holds ``run.json`` (the marker that pspnet-edu made it: the command
and the time), ``last.pt`` (the checkpoint), ``history.json`` and ``history.csv``, and, while a
run is active, ``.lock``. The policy, the same for every command that writes:

- a run writes only into a folder it creates, an empty one, or one that carries its
  ``run.json`` (or a ``last.pt`` of an earlier release); a folder holding anything else
  belongs to the user and is refused;
- a folder with a finished or interrupted run is continued only with ``resume`` and replaced
  only with ``force`` (which overwrites the run's own files and nothing else), and only when
  the new run first saves (:meth:`RunFolder.start`): a new run that fails before, on a
  configuration mistake or a diverging first step, leaves the old run as it was;
- a second run into a folder that is in use is refused, naming the first (``.lock`` is held
  with ``fcntl.flock``, so it is released even if the first run is killed);
- the folder is checked writable before any training, and a folder the run created is
  removed again if the run fails before writing anything into it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from pspnet_edu.files import check_writable, write_atomic
from pspnet_edu.provenance import command_line
from pspnet_edu.training.checkpoint import CHECKPOINT_NAME
from pspnet_edu.training.history import HISTORY_FILES

try:  # POSIX; on Windows runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

RUN_MANIFEST = "run.json"
LOCK_NAME = ".lock"
RUN_FILES = (RUN_MANIFEST, CHECKPOINT_NAME, *HISTORY_FILES)


class RunFolder:
    """``with RunFolder(out, resume=..., force=...) as folder:`` claims ``out`` for one run (see above)."""

    def __init__(self, path: str | Path, *, resume: bool = False, force: bool = False, active: bool = True) -> None:
        self.path = Path(path)
        self.checkpoint = self.path / CHECKPOINT_NAME
        self.resume, self.force = resume, force
        self.active = active  # False under torchrun on ranks > 0: only rank 0 touches the folder
        self._created = False
        self._lock: IO[str] | None = None
        self.started = False  # True once the run's own files may be written (see start)

    def __enter__(self) -> RunFolder:
        if self.active:
            try:
                self._claim()
            except BaseException:
                self._release(failed=True)
                raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._release(failed=kind is not None)

    def _release(self, failed: bool) -> None:
        if self._lock is not None:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
            self._lock.close()  # releases the flock
            self._lock = None
        if failed and self._created and self._holds_nothing():
            shutil.rmtree(self.path, ignore_errors=True)  # a failed run leaves no empty folder behind

    def _claim(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"--out {path} is a file, not a folder; choose a folder name for the run")
        if path.is_dir() and any(path.iterdir()) and not self.is_run_folder():
            raise FileExistsError(f"--out {path} already holds files that pspnet-edu did not write (no {RUN_MANIFEST}); "
                                  "they were left untouched: choose a new folder for the run")
        if not path.exists():
            check_writable(path, "--out")  # the nearest existing parent must take a new folder
            path.mkdir(parents=True)
            self._created = True
        check_writable(path, "--out")
        self._take_lock()
        if self.checkpoint.exists() and not (self.resume or self.force):
            raise FileExistsError(f"{self.checkpoint} already exists; pass --resume to continue that run, --force to "
                                  "train it again from scratch (replacing its files), or choose another --out")
        if self.resume and not self.checkpoint.is_file():
            raise FileNotFoundError(f"nothing to resume: {self.checkpoint} does not exist; drop --resume to start a "
                                    "new run")
        if self.resume or not self.checkpoint.exists():
            self.start()  # a run to continue, or nothing to replace: the folder is the run's at once

    def start(self) -> None:
        """Make the folder the new run's: delete the replaced run's files (``force``), write ``run.json``.

        Called by the trainer before it first saves, so that ``--force`` with a setting that
        fails at once (a batch larger than the data, a crop too small) keeps the previous run.
        Does nothing the second time, on a resumed run, or if the folder is not this process's
        (``active`` False).
        """
        if self.started or not self.active:
            return
        self.started = True
        if self.resume:
            return
        for name in (CHECKPOINT_NAME, *HISTORY_FILES):  # --force: the run's own files only
            (self.path / name).unlink(missing_ok=True)
        write_atomic(self.path / RUN_MANIFEST, json.dumps(
            {"kind": "pspnet-edu/run", "command": command_line(),
             "started": time.strftime("%Y-%m-%d %H:%M:%S"),
             "files": list(RUN_FILES)}, indent=1) + "\n")

    def is_run_folder(self) -> bool:
        """True if ``run.json`` says pspnet-edu made this folder (or an older release's last.pt is in it)."""
        try:
            return json.loads((self.path / RUN_MANIFEST).read_text()).get("kind") == "pspnet-edu/run"
        except (OSError, ValueError, AttributeError):
            return self.checkpoint.is_file()

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        lock = open(self.path / LOCK_NAME, "a+", errors="surrogateescape")  # a non-UTF-8 name in the command
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise FileExistsError(f"--out {self.path} is in use by another run ({holder}); wait for it to finish or "
                                  "choose another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%H:%M:%S')}: "
                   f"{command_line()}\n")
        lock.flush()
        self._lock = lock

    def _holds_nothing(self) -> bool:
        return all(p.name in (RUN_MANIFEST, LOCK_NAME) for p in self.path.iterdir())

