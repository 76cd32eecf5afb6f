"""How a result was made: the command, the commit, the versions, the machine, the time.

Every results file of the course carries this record (``results/*.json``), so that a number
in a lesson can be traced to the run that produced it and reproduced.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision

from pspnet_edu.files import REPOSITORY as _REPOSITORY

_COMMAND: list[str] | None = None  # set by running_command (the CLI's main), else sys.argv is used


def command_line() -> str:
    """The command being run, as it would be typed (``pspnet-edu train ...``), not a path to a script.

    Absolute paths in it are written relative to the current folder (the record is committed
    with results; it must not name a folder of this machine): a path below the current folder
    becomes relative, any other keeps only its last two parts after ``.../``.
    """
    program = Path(sys.argv[0]).name
    if Path(sys.argv[0]).resolve() == Path(__file__).with_name("__main__.py"):  # python -m pspnet_edu, e.g. in a
        program = "pspnet-edu"                                                  # worker process of a sweep
    words = _COMMAND if _COMMAND is not None else [program, *sys.argv[1:]]
    return shlex.join(portable_path(word) for word in words)


def portable_path(word: str, here: str | Path | None = None) -> str:
    """``word`` with a machine's absolute path made portable (see :func:`command_line`); other words unchanged.

    >>> portable_path("/srv/ann/course/runs/a/last.pt", here="/srv/ann/course")
    'runs/a/last.pt'
    >>> portable_path("/scratch/sweep/data/synthcity", here="/srv/ann/course")
    '.../data/synthcity'
    >>> portable_path("--iters")
    '--iters'
    """
    if not word.startswith("/"):
        return word
    path, here = Path(word), Path(here if here is not None else os.getcwd())
    try:
        return path.relative_to(here).as_posix() or "."
    except ValueError:
        return ".../" + "/".join(path.parts[-2:])


@contextlib.contextmanager
def running_command(words: Sequence[str]) -> Iterator[None]:
    """Within the block, :func:`command_line` is ``words`` (``main(argv)`` called from Python or a test)."""
    global _COMMAND
    previous, _COMMAND = _COMMAND, list(words)
    try:
        yield
    finally:
        _COMMAND = previous


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=_REPOSITORY, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo ("model name", "flags"), or None (another OS)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides CPU speed in fp32 and bf16


def cpu_extensions() -> list[str]:
    """The instruction-set extensions that matter for torch on this CPU (from /proc/cpuinfo; [] elsewhere)."""
    flags = set((_cpuinfo("flags") or "").split())
    return [flag for flag in _ISA_FLAGS if flag in flags]


def machine() -> str:
    """'Linux x86_64, 2 CPUs: AMD EPYC (avx2 avx512f avx512_bf16; torch kernels AVX512)': what a timing ran on."""
    extensions = " ".join(cpu_extensions()) or "no AVX2"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs: {_cpu()} ({extensions}; "
            f"torch kernels {torch.backends.cpu.get_cpu_capability()})")


def provenance(seconds: float | None = None) -> dict[str, Any]:
    """The record: command, commit (and whether the tree had changes), versions, CPU, threads, time."""
    commit = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": command_line(),
        "commit": commit, "uncommitted_changes": bool(changes) if changes is not None else None,
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "wall_seconds": None if seconds is None else round(seconds, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
