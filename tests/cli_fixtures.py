"""Shared by the CLI tests: a small synthetic set and one trained run (a helper module, not a test file)."""

from __future__ import annotations

import pytest
import torch

from pspnet_edu.cli import main
from pspnet_edu.data.synthetic import generate_synthetic

SMALL = ["--iters", "2", "--batch-size", "2", "--crop", "48x96", "--threads", "1"]


@pytest.fixture(autouse=True)
def restore_threads():
    """`--threads 1` sets torch's thread count for the whole process: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return str(generate_synthetic(tmp_path_factory.mktemp("data") / "synth", train=4, val=2, size=(48, 96)))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("runs") / "run"
    threads = torch.get_num_threads()
    assert main(["train", "--data", data, "--out", str(out), *SMALL]) == 0
    torch.set_num_threads(threads)  # module-scoped: the autouse fixture does not cover it
    return str(out)


def one_line_error(capsys, arguments: list[str]) -> str:
    """Run a command that must fail on bad input: status 2 and exactly one line on stderr."""
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error
