"""Tests for pspnet_edu.training.memory: freed blocks are kept for the next step, not faulted in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pspnet_edu.training.memory import keep_freed_memory

# A "step" that allocates six 20 MB tensors at once and frees them; the page faults of five
# more steps (Linux counts one per 4 KiB page the process touches for the first time).
STEPS = """
import resource, sys, torch
from pspnet_edu.training.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    tensors = [torch.ones(5 * 2**20) for _ in range(6)]
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not keep_freed_memory(), reason="needs glibc's malloc (Linux)")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    kept, default = _page_faults("keep"), _page_faults("default")
    assert default > 5 * 20 * 2**20 // 4096  # by default most of the 120 MB comes back from the kernel each step
    assert kept < default / 3


def test_other_platforms_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
