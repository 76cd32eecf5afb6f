"""The record of a run: averaged training losses, learning rates and evaluations, and their files.

Every ``log_every`` iterations one row of ``history["train"]`` holds the mean of the losses over
those steps and the learning rate of each parameter group (read from the optimiser); every
evaluation adds a row to ``history["val"]``. The run folder gets ``history.json`` (everything)
and ``history.csv`` (one row per logged iteration), both written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from pspnet_edu.files import strict_json, write_atomic

HISTORY_FILES = ("history.json", "history.csv")
_LOSSES = ("loss", "loss_main", "loss_aux")
CSV_COLUMNS = ["iteration", "lr", "lr_head", *_LOSSES, "val_miou", "val_pixel_acc", "val_mean_acc"]


@dataclass
class TrainLog:
    """History rows plus the running sums of the steps not logged yet (saved in checkpoints)."""

    train: list[dict[str, Any]] = field(default_factory=list)
    val: list[dict[str, Any]] = field(default_factory=list)
    window: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*_LOSSES, "count"), 0.0))

    def add_step(self, loss: Tensor, parts: dict[str, Tensor]) -> None:
        """Add one step's losses to the window."""
        self.window["loss"] += float(loss)
        self.window["loss_main"] += float(parts["main"])
        self.window["loss_aux"] += float(parts.get("aux", 0.0))
        self.window["count"] += 1

    def close_window(self, iteration: int, learning_rates: dict[str, float]) -> dict[str, Any]:
        """Turn the window into a history row (mean losses, the groups' rates) and start a new one.

        ``learning_rates`` maps group names to rates; "lr" is the backbone's (the base rate).
        A window whose steps were all skipped (batches without a labelled pixel) has no loss:
        NaN (null in history.json).
        """
        count = self.window["count"]
        base = learning_rates.get("backbone", next(iter(learning_rates.values())))
        row = {"iteration": iteration, "lr": base, "lr_head": learning_rates.get("head"),
               **{k: self.window[k] / count if count else math.nan for k in _LOSSES}}
        self.train.append(row)
        self.window = dict.fromkeys((*_LOSSES, "count"), 0.0)
        return row

    def evaluated_at(self, iteration: int) -> bool:
        return bool(self.val) and self.val[-1]["iteration"] == iteration

    def state(self) -> dict[str, Any]:
        return {"history": {"train": self.train, "val": self.val}, "window": self.window}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrainLog:
        return cls(train=state["history"]["train"], val=state["history"]["val"], window=state["window"])


def write_history(run_dir: Path, log: TrainLog, class_names: list[str] | None) -> None:
    """``history.json`` (everything) and ``history.csv`` (one row per logged iteration), both atomic."""
    history = {"train": log.train, "val": log.val, "class_names": class_names}
    write_atomic(run_dir / "history.json", strict_json(history, indent=1))  # absent classes: null
    rows: dict[int, dict[str, Any]] = {}
    for row in log.train:
        rows.setdefault(row["iteration"], {}).update(row)
    for row in log.val:
        rows.setdefault(row["iteration"], {"iteration": row["iteration"]}).update(
            {f"val_{k}": v for k, v in row.items() if k not in ("iteration", "iou")})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for iteration in sorted(rows):
        writer.writerow(rows[iteration])
    write_atomic(run_dir / "history.csv", buffer.getvalue())
