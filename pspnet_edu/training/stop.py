"""Ctrl-C and SIGTERM during training: finish the step, save, then stop (resume later with --resume)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_worker = {"listening": False, "requested": False}  # a sweep's worker process: see listen_for_stop


def listen_for_stop() -> None:
    """In a sweep's worker process: a stop asked for between trainings is kept for the next one.

    A worker trains one run after another. A SIGTERM or Ctrl-C that arrives while no
    :class:`StopFlag` is active (the worker is idle, or building its next run) is remembered
    instead of killing the process, and so is one that stopped a run: the next StopFlag starts
    with ``requested`` set (its run saves after one step) and :func:`stop_requested` says not
    to start another run.
    """
    _worker["listening"] = True
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _remember)


def stop_requested() -> bool:
    """True in a worker (:func:`listen_for_stop`) once a stop was asked for."""
    return _worker["requested"]


def _remember(signum: int, frame: FrameType | None) -> None:
    _worker["requested"] = True


class StopFlag:
    """While active, the first Ctrl-C or SIGTERM only sets ``requested``; a second Ctrl-C aborts at once.

    The trainer checks ``requested`` after every step and keeps the flag active until its
    checkpoint is on disk, so a signal never loses finished work. Handlers are restored on exit.
    Outside the main thread (where Python allows no handlers) it does nothing.
    """

    def __init__(self, announce: Callable[[str], None]) -> None:
        self.requested = _worker["requested"]  # False but in a worker asked to stop (listen_for_stop)
        self._announce = announce
        self._interrupted = False  # a Ctrl-C seen: the next one aborts (a SIGTERM before it does not count)
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True
        self.requested = True
        if _worker["listening"]:
            _worker["requested"] = True  # the worker starts no other run
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
