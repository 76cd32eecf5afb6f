"""The default training command now against the same command at an older commit: time and peak memory.

    python benchmarks/bench_vs_commit.py                      # against 47bc2cf, 5 pairs
    python benchmarks/bench_vs_commit.py --commit 47bc2cf --pairs 7 -- --threads 1

Each side runs ``python -m pspnet_edu train --iters 60`` (plus the arguments after ``--``) as a
learner would, in a fresh process, with its own code and its own default data: the old commit's
tree is extracted with ``git archive`` into a temporary folder (git's state is not touched) and
generates its synthetic set there on its first run. One untimed run of each side comes first
(data generation, file caches); then the pairs alternate which side goes first, so that a drift
of the machine's speed falls on both alike. Reported: each side's median wall time (with min-max),
the median of the per-pair ratios now / old (with min-max), and each side's peak resident memory
(the child's own, from ``os.wait4``; Linux counts a child's memory at its start as the parent's,
so this process imports no torch and stays small).

Numbers depend on the machine and on whatever else runs on it: report them with the CPU line
this prints, and never assert them in a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """pspnet_edu.provenance.machine(), asked of a child: this process must not import torch (see run)."""
    code = "from pspnet_edu.provenance import machine; print(machine())"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()


def extract(commit: str, where: Path) -> Path:
    """The tree of ``commit`` in ``where/<commit>``, by ``git archive`` (no checkout, no worktree)."""
    target = where / commit
    target.mkdir(parents=True)
    archive = where / f"{commit}.tar"
    with archive.open("wb") as out:
        done = subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=out, stderr=subprocess.PIPE, text=False)
    if done.returncode != 0:
        raise SystemExit(f"git archive {commit} failed: {done.stderr.decode().strip()}; is {commit} a commit of this "
                         "repository (a full clone, not a shallow one)?")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def run(tree: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one training command run in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "TQDM_DISABLE": "1"}
    command = [sys.executable, "-m", "pspnet_edu", "train", "--iters", "60", "--out", str(out), *extra]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a full pipe would block the child
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage (peak RSS)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        error = errors.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} in {tree} failed ({process.returncode}): "
                         f"{error.splitlines()[-1] if error else 'no message'}")
    return seconds, usage.ru_maxrss / 1024  # kB on Linux


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="47bc2cf", help="the older commit (default 47bc2cf)")
    parser.add_argument("--pairs", type=int, default=5, help="timed pairs (default 5)")
    parser.add_argument("extra", nargs="*", help="arguments for both commands, after --")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-vs-commit-") as folder:
        scratch = Path(folder)
        sides = {"old": extract(args.commit, scratch), "now": ROOT}
        for name, tree in sides.items():  # untimed: the old tree generates its data here
            run(tree, scratch / f"warm-{name}", args.extra)
        times: dict[str, list[float]] = {"old": [], "now": []}
        memory: dict[str, list[float]] = {"old": [], "now": []}
        for pair in range(args.pairs):
            order = ("old", "now") if pair % 2 == 0 else ("now", "old")
            for name in order:
                seconds, peak = run(sides[name], scratch / f"{name}-{pair}", args.extra)
                times[name].append(seconds)
                memory[name].append(peak)
    ratios = [now / old for now, old in zip(times["now"], times["old"])]
    print(machine())
    print(f"python -m pspnet_edu train --iters 60 {' '.join(args.extra)}".rstrip()
          + f": working tree vs {args.commit}, {args.pairs} alternating pairs after one untimed run each")
    for name in ("old", "now"):
        label = args.commit if name == "old" else "now"
        print(f"  {label:<10} {statistics.median(times[name]):7.1f} s ({spread(times[name], 1)})   peak RSS "
              f"{statistics.median(memory[name]):5.0f} MB")
    print(f"  time ratio now / {args.commit}: median {statistics.median(ratios):.2f} ({spread(ratios)}); "
          f"speed-up {1 / statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
