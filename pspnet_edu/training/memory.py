"""Freed memory kept for the next step: the one allocator setting that makes CPU training cheaper.

Every training step allocates and frees the same large tensors: the logits at full resolution
(batch 8 x 19 classes x 128 x 256 floats: 20 MB, for each of the two heads) and their
gradients. glibc's ``malloc`` serves a block above its mmap threshold (128 KiB at first, raised
as it goes, at most 32 MiB) with fresh pages from the kernel and gives them back when the block
is freed, and it hands the top of its heap back once more than the trim threshold is free. So
each step asked the kernel for the same 20 MB blocks again: every page faulted in and zeroed
(the default training command spent 13 s of its 42 s in the kernel; 2026-12-06, AMD EPYC, two
threads). Raising both thresholds keeps the freed blocks in the process, where the next step
finds them: a step of the tiny preset on one fixed batch took 0.273 s instead of 0.336 s (median
of 8, two threads; ``benchmarks/bench_vs_commit.py`` gives the whole command's figure).

The arithmetic is untouched (the same operations in the same order, only on reused bytes), so
the weights stay the same to the bit. The cost: up to ``trim_threshold`` bytes freed by the
process stay counted in its resident memory until it exits; the peak, which decides whether a
run fits, is the same. This is what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc
via ``LD_PRELOAD``, done from inside the process with glibc's own ``mallopt``.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h: free memory at the top of the heap kept before giving it back
M_MMAP_THRESHOLD = -3  # glibc malloc.h: blocks at least this large get their own mmap
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**30  # 1 GiB


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; True if it took both settings.

    Process-wide and harmless to call again. Returns False, changing nothing, where the C
    library is not glibc (macOS, Windows, musl): there the allocator already behaves
    differently, and nothing else depends on it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl's mallopt ignores these settings)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
