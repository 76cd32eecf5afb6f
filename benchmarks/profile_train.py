"""Where the default training command's time goes: imports, steps, batches, evaluation, shutdown.

    python benchmarks/profile_train.py train --iters 60 --out DIR     # any pspnet-edu arguments

Runs the command in this process as the ``pspnet-edu`` program does (``pspnet_edu.cli.console``:
its imports, ``main``, then ``gc.freeze``; with ``PYTHONPATH`` at the tree of an older commit, as
that commit's program did), with timers around the trainer's parts: the training
steps (``training.loop.train_step``), the batches' samples (``SeededSamples.__getitem__``, which
includes the PNG decoding, also shown alone), and the end of the run (``_finish``: save, final
evaluation, save). It prints them on stderr when the process exits; the wall time of the whole
process (``/usr/bin/time``) minus "at exit" is Python's shutdown. The timers add a few function
calls per sample and step; no profiler runs.

Numbers depend on the machine and on whatever else runs on it: report them with the CPU, and
never assert them in a test.
"""

from __future__ import annotations

import atexit
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

START = time.perf_counter()
import pspnet_edu.cli as cli  # noqa: E402  (the program's imports, timed)
import pspnet_edu.data.cityscapes as cityscapes  # noqa: E402
import pspnet_edu.training.loop as loop  # noqa: E402
import pspnet_edu.training.sampling as sampling  # noqa: E402

IMPORTS = time.perf_counter() - START
SECONDS: dict[str, float] = {}


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its wall time to ``SECONDS[label]``."""
    function: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[label] = SECONDS.get(label, 0.0) + time.perf_counter() - begun

    setattr(owner, name, wrapper)


def report() -> None:
    print(f"imports {IMPORTS:.2f} s; at exit {time.perf_counter() - START:.2f} s", file=sys.stderr)
    for label, seconds in SECONDS.items():
        print(f"  {label:<34}{seconds:6.2f} s", file=sys.stderr)


if __name__ == "__main__":
    timed(loop, "train_step", "training steps")
    timed(sampling.SeededSamples, "__getitem__", "samples (decoding included)")
    timed(cityscapes.CityscapesSegmentation, "_decode", "PNG decoding")
    timed(loop, "_finish", "save, final evaluation, save")
    atexit.register(report)
    code = cli.main(sys.argv[1:])
    if hasattr(cli, "console"):  # the program since commit 175c6c0: pspnet_edu.cli.console
        gc.freeze()
    sys.exit(code)
