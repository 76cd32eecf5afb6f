"""Tests for pspnet_edu.files: atomic writes with the umask's permissions, one size parser, writability."""

from __future__ import annotations

import os
import stat

import pytest

from pspnet_edu.files import check_writable, parse_size, write_atomic


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
