"""Tests for pspnet_edu.files: atomic writes (umask, full disk, killed writers), one size parser, clear system errors,
the course's own files found from anywhere."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pspnet_edu.files import (
    REPOSITORY,
    check_writable,
    course_file,
    describe_os_error,
    parse_size,
    remove_stale_temporaries,
    strict_json,
    temporary_prefix,
    write_atomic,
)


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path) -> None:
    write_atomic(tmp_path / "a.json", "old")
    write_atomic(tmp_path / "a.json", b"new")
    assert (tmp_path / "a.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path) -> None:
    write_atomic(tmp_path / "a.txt", "old")

    def broken(file) -> None:
        file.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "a.txt", broken)
    assert (tmp_path / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path, umask, mode) -> None:
    old = os.umask(umask)
    try:
        path = write_atomic(tmp_path / "shared.txt", "for the students")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("text, expected", [("128x256", (128, 256)), ("64X128", (64, 128)), (" 96 ", (96, 96)),
                                            ("1x1", (1, 1))])
def test_parse_size(text, expected) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0x5", "-3x4", "128by256", "x", "", "1.5x2", "3x4x5"])
def test_parse_size_refuses_with_the_expected_form(text) -> None:
    with pytest.raises(ValueError, match=r"--crop .* is not a size: write HEIGHTxWIDTH"):
        parse_size(text, "--crop")


def test_check_writable(tmp_path) -> None:
    check_writable(tmp_path / "new" / "deeper")  # a folder to be made under a writable one
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "run", "--out")


class FillsTheDisk(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)


@pytest.mark.parametrize("writer", ["plain", "torch.save"])
def test_a_full_disk_says_so_and_keeps_the_previous_file(tmp_path, writer) -> None:
    """torch.save reports a full disk as "RuntimeError: [enforce fail ...] unexpected pos": found in the chain."""
    write_atomic(tmp_path / "last.pt", b"the previous checkpoint")

    def fill(file) -> None:
        if writer == "plain":
            FillsTheDisk(file, 10).write(b"x" * 100)
        else:
            torch.save({"weights": torch.zeros(10_000)}, FillsTheDisk(file, 1000))

    with pytest.raises(OSError, match=r"cannot write .*last\.pt: the disk is full .*previous last\.pt is intact"):
        write_atomic(tmp_path / "last.pt", fill)
    assert (tmp_path / "last.pt").read_bytes() == b"the previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left


def test_the_temporary_of_a_killed_write_is_removed_by_the_next_write(tmp_path) -> None:
    killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pspnet_edu.files import write_atomic
        def slow(file):
            print("writing", flush=True)
            time.sleep(60)
        write_atomic({str(tmp_path / "last.pt")!r}, slow)
        """)], stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "writing"
    killed.kill()  # kill -9: no clean-up runs
    killed.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".last.pt.") and left[0].endswith(".tmp"), left
    (tmp_path / ".last.pt.notes.tmp").write_text("not the writer's pattern")  # never touched
    write_atomic(tmp_path / "history.json", "{}")  # another file's write leaves it alone
    assert left[0] in {p.name for p in tmp_path.iterdir()}
    write_atomic(tmp_path / "last.pt", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.pt.notes.tmp", "history.json", "last.pt"]


def test_a_writer_still_running_keeps_its_temporary(tmp_path) -> None:
    own = tmp_path / f"{temporary_prefix(tmp_path / 'a.txt')}abcdefgh.tmp"  # this process: still running
    own.write_text("half")
    assert remove_stale_temporaries(tmp_path / "a.txt") == [] and own.exists()


def test_raw_system_errors_become_a_sentence_with_a_fix() -> None:
    assert describe_os_error(OSError(errno.EEXIST, "File exists", "afile")) == (
        "afile: file exists; a file of that name is in the way: move it or choose another path")
    assert "choose another path" in describe_os_error(NotADirectoryError(errno.ENOTDIR, "Not a directory", "f/x"))
    assert describe_os_error(FileNotFoundError("our own sentence")) == "our own sentence"


def test_a_symbolic_link_loop_is_named(tmp_path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for path in (tmp_path / "loop", tmp_path / "loop" / "run"):
        with pytest.raises(FileNotFoundError, match="--out .* is a symbolic link loop"):
            check_writable(path, "--out")


def test_strict_json_writes_null_for_nan() -> None:
    text = strict_json({"miou": float("nan"), "iou": [0.5, float("-inf")]})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}")) == {"miou": None,
                                                                                       "iou": [0.5, None]}


def test_course_file_finds_the_repositorys_files_from_any_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # as a student copy of a lesson runs: not in notebooks/
    assert course_file("data/checkpoints/pspnet_tiny.pt") == REPOSITORY / "data" / "checkpoints" / "pspnet_tiny.pt"
    assert course_file("results").is_dir() and (course_file("results") / "ablate_ppm.json").is_file()
    assert (REPOSITORY / "pspnet_edu" / "files.py").is_file()


@pytest.mark.parametrize("relative", ["data/checkpoints/no_such.pt", "ABSOLUTE", "../outside.txt"])
def test_course_file_names_a_missing_or_outside_path_in_one_sentence(relative, tmp_path, monkeypatch) -> None:
    import pspnet_edu.files

    course = tmp_path.resolve() / "course"  # as REPOSITORY is: resolved
    (course / "data" / "checkpoints").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("a file next to the course, not in it")
    monkeypatch.setattr(pspnet_edu.files, "REPOSITORY", course)
    relative = str(tmp_path / "outside.txt") if relative == "ABSOLUTE" else relative  # exists, but is not the course's
    with pytest.raises(FileNotFoundError) as info:
        course_file(relative)
    message = str(info.value)
    assert message.startswith(f"{Path(relative).as_posix()} is not a file of the course's repository") and "\n" not in message
    assert course_file("data/checkpoints") == course / "data" / "checkpoints"
