"""Freed memory kept for the next step: an allocator setting that makes CPU training cheaper.

Every training step allocates and frees the same large tensors: the logits at full resolution
(batch 8 x 19 classes x 128 x 256 floats: 20 MB, for each of the two heads) and their
gradients. glibc's ``malloc`` serves a block above its mmap threshold (128 KiB at first, raised
as it goes, at most 32 MiB) with fresh pages from the kernel and gives them back when the block
is freed, and it hands the top of its heap back once more than the trim threshold is free. So
each step asked the kernel for the same 20 MB blocks again: every page faulted in and zeroed.
The default training command spent 13.1 s in the kernel (system time by ``/usr/bin/time``, the
command under cProfile, 42.5 s wall); with both thresholds raised, 1.0 s (22.6 s wall, without
cProfile; 2026-12-06, AMD EPYC, two threads). The freed blocks stay in the process, where the
next step finds them: a step of the tiny preset on one fixed batch took 0.273 s instead of
0.336 s (median of 8, two threads; ``benchmarks/bench_vs_commit.py`` gives the whole command's
figure).

The arithmetic is untouched (the same operations in the same order, only on reused bytes), so
the weights stay the same to the bit. The cost: up to ``trim_threshold`` bytes that the process
freed stay in its resident memory until it exits (a Jupyter kernel that trained keeps them), and
the peak may rise where freed blocks cannot be reused for larger ones: ``make demo``'s largest
process peaked at 1128 MB against 1058 MB before (README). This is what PyTorch's CPU tuning
guide gets from jemalloc or tcmalloc via ``LD_PRELOAD``, done from inside the process with
glibc's own ``mallopt``.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h: free memory at the top of the heap kept before giving it back
M_MMAP_THRESHOLD = -3  # glibc malloc.h: blocks at least this large get their own mmap
MMAP_THRESHOLD = 32 * 2**20  # the ceiling of glibc's own sliding threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 2**30  # 1 GiB


def glibc() -> ctypes.CDLL | None:
    """The C library this interpreter runs on, if it is glibc (Linux); None elsewhere (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None  # musl's mallopt ignores these settings


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; True if it took both settings.

    Process-wide and harmless to call again. Returns False, changing nothing, where the C
    library is not glibc: there the allocator behaves otherwise, and nothing depends on it.
    """
    libc = glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
