"""Ctrl-C and SIGTERM during training: finish the step, save, then stop (resume later with --resume)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class StopFlag:
    """While active, the first Ctrl-C or SIGTERM only sets ``requested``; a second Ctrl-C aborts at once.

    The trainer checks ``requested`` after every step and keeps the flag active until its
    checkpoint is on disk, so a signal never loses finished work. Handlers are restored on exit.
    Outside the main thread (where Python allows no handlers) it does nothing.
    """

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.requested = False
        self._announce = announce
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self._announce(f"{signal.Signals(signum).name}: finishing this step, saving the checkpoint, then stopping "
                       "(Ctrl-C again to abort without saving)")

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
