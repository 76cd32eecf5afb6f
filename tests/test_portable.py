"""No committed file names a folder of the machine that made it: a learner's clone could not use it.

Checkpoints, sidecars and results describe their data by its source (``training.trained_on``),
provenance records write paths relative to the repository (``provenance.portable_path``), and
notebooks print paths relative to their folder. This test reads every file git tracks,
binary checkpoints included.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
# A temporary folder, a home, a checkout: /tmp/x, /home/ann, /Users/ann, /root/x, /work/main, C:\Users\ann.
MACHINE_PATH = re.compile(rb"(^|[^A-Za-z0-9_.~/])(/(tmp|work|home|root|Users|var/folders|private/var)/[A-Za-z0-9_.-]+"
                          rb"|[A-Z]:\\\\?Users)")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True).stdout
    return [REPOSITORY / name for name in names.decode().split("\0") if name]


def test_the_pattern_finds_machine_paths() -> None:
    for text in (b'"data": "/tmp/sweep/data"', b"--out /work/main/x.pt", b"/home/ann/course", b"C:\\Users\\ann"):
        assert MACHINE_PATH.search(text), text
    for text in (b"data/checkpoints/x.pt", b".../seed0/last.pt", b"~/cityscapes", b"https://example.org/home/x"):
        assert not MACHINE_PATH.search(text), text


def test_no_tracked_file_names_a_machines_folder() -> None:
    found = []
    for path in tracked_files():
        if path.resolve() == Path(__file__).resolve() or not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            match = MACHINE_PATH.search(line)
            if match:
                found.append(f"{path.relative_to(REPOSITORY)}:{number}: {match.group(2).decode(errors='replace')}")
    assert not found, "machine paths in committed files:\n" + "\n".join(found[:20])
