"""One pass over the package's CUDA paths on a machine with a GPU: what runs, how fast, how close.

    python benchmarks/gpu_check.py --out DIR                        # one GPU: about 5 minutes
    python benchmarks/gpu_check.py --out DIR --device cpu --quick   # the script's own trial run

Prepared for the first session that is lent a GPU: until then the CUDA paths are written but
untested (README, "Timings"); the trial run on the CPU checks the script, not CUDA. Each part
prints its lines as it goes and records them in ``DIR/gpu_check.json``; a part that fails is
recorded with its last error line, and the next part runs.

1. ``machine``: torch, CUDA and cuDNN versions, the devices and their memory.
2. ``train``: the tiny preset trained with the package's own command, as a learner would run it
   (``python -m pspnet_edu train --device D --iters N``) in fp32 with channels_last (the
   default), fp32 without it, bf16 autocast and fp16 AMP with its GradScaler (CUDA only): wall
   time, final val mIoU, peak GPU memory (``torch.cuda.max_memory_allocated`` in the run's
   process is not reachable from here: ``nvidia-smi`` is asked instead, when it exists).
3. ``repeat``: the fp32 run once more with the same seed: the same weights to the bit? (On the
   CPU they are, ``tests/test_training_loop.py``; cuDNN may choose kernels that sum in another
   order each time.)
4. ``torchrun``: the same command under ``torchrun --standalone --nproc_per_node G`` (G: every
   GPU, at least 1; 2 processes on the CPU): NCCL, DistributedDataParallel, SyncBatchNorm.
5. ``paper``: the "paper" preset beside the author's code (``tests/reference/semseg_pspnet.py``
   with the same weights, as ``benchmarks/bench_model.py`` builds them): inference at
   1 x 3 x 513 x 1025 (the author's fp32, ours, ``prepare_for_inference`` in fp32 and bf16):
   median time, ratio, max |logit difference|, argmax agreement; one training step at
   2 x 3 x 473 x 473 (the author's fp32, ours fp32 channels_last, bf16 autocast, fp16 AMP):
   median time and peak GPU memory.

Numbers depend on the machine: report them with the machine line, never assert them in a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_model import official_and_ours  # noqa: E402  (the same weights on both sides)

from pspnet_edu.inference import prepare_for_inference  # noqa: E402
from pspnet_edu.loss import pspnet_loss  # noqa: E402

RESULTS: dict[str, Any] = {}


def say(part: str, line: str) -> None:
    print(f"[{part}] {line}", flush=True)
    RESULTS.setdefault(part, {}).setdefault("lines", []).append(line)


def machine(device: torch.device) -> None:
    say("machine", f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    if device.type == "cuda":
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            say("machine", f"cuda:{index} {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
                           f"compute capability {properties.major}.{properties.minor}")
    else:
        from pspnet_edu.provenance import machine as cpu_machine
        say("machine", cpu_machine())


def gpu_memory_used_mb() -> str:
    """nvidia-smi's memory in use on each GPU, or '' where there is none."""
    if shutil.which("nvidia-smi") is None:
        return ""
    done = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True)
    return done.stdout.strip().replace("\n", ", ")


def command_run(part: str, label: str, command: list[str], out: Path) -> float | None:
    """Run one training command; print its wall time and final val mIoU. None if it failed."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        say(part, f"{label}: FAILED (exit {done.returncode}): {lines[-1] if lines else ''}")
        return None
    final = [line for line in done.stdout.splitlines() if line.startswith("final val mIoU")]
    say(part, f"{label}: {seconds:.1f} s wall, {final[-1] if final else 'no final mIoU line'}"
              f"{'; GPU memory in use after: ' + gpu_memory_used_mb() + ' MiB' if gpu_memory_used_mb() else ''}")
    (out / f"{label}.log").write_text(done.stdout + done.stderr)
    return seconds


def trainings(device: torch.device, iters: int, out: Path) -> None:
    base = [sys.executable, "-m", "pspnet_edu", "train", "--device", device.type, "--iters", str(iters)]
    variants = {"fp32": [], "fp32-nchw": ["--no-channels-last"], "bf16": ["--precision", "bf16"]}
    if device.type == "cuda":
        variants["fp16-amp"] = ["--precision", "fp16"]
    for label, extra in variants.items():
        command_run("train", label, [*base, *extra, "--out", str(out / label)], out)
    if command_run("repeat", "fp32-again", [*base, "--out", str(out / "fp32-again")], out) is not None:
        first, again = (torch.load(out / name / "last.pt", map_location="cpu", weights_only=True)["model"]
                        for name in ("fp32", "fp32-again"))
        different = [key for key in first if not torch.equal(first[key], again[key])]
        worst = max((float((first[k].float() - again[k].float()).abs().max()) for k in different), default=0.0)
        say("repeat", "the same weights to the bit" if not different else
            f"{len(different)} of {len(first)} tensors differ, max |difference| {worst:.2e}")
    processes = max(torch.cuda.device_count(), 1) if device.type == "cuda" else 2
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                "-m", "pspnet_edu", "train", "--device", device.type, "--iters", str(iters),
                "--out", str(out / "torchrun")]
    command_run("torchrun", f"torchrun-{processes}", torchrun, out)


def timed(step: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, Any]:
    """Median seconds of ``step`` after one warm-up, and its last output."""
    output = step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        output = step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), output


def peak_mb(device: torch.device) -> str:
    return f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device.type == "cuda" else ""


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def paper(device: torch.device, quick: bool, repeats: int) -> None:
    official, ours = official_and_ours()
    official, ours = official.to(device), ours.to(device)
    size = (129, 257) if quick else (513, 1025)  # the author's code asks for sizes 8n + 1
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1)).to(device)
    official.eval(), ours.eval()
    models: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "official": lambda images: official(images),
        "ours": lambda images: ours(images.contiguous(memory_format=torch.channels_last))["out"],
    }
    ours.to(memory_format=torch.channels_last)
    for precision in ("fp32", "bf16"):
        prepared = prepare_for_inference(ours, precision=precision, device=device)
        models[f"prepared-{precision}"] = lambda images, model=prepared: model(images)["out"]
    outputs, reference = {}, None
    for name, forward in models.items():
        reset_peak(device)
        with torch.inference_mode():
            seconds, outputs[name] = timed(lambda: forward(x), device, repeats)
        reference = reference or seconds
        say("paper", f"infer {name}: {1e3 * seconds:.1f} ms, ratio {seconds / reference:.2f}{peak_mb(device)}")
    for name in ("prepared-fp32", "prepared-bf16"):
        difference = float((outputs[name].float() - outputs["official"]).abs().max())
        agreement = float((outputs[name].argmax(1) == outputs["official"].argmax(1)).float().mean())
        say("paper", f"{name} against official: max |logit difference| {difference:.2e}, argmax equal on "
                     f"{100 * agreement:.2f} % of pixels")
    train_steps(official, ours, device, quick, repeats)


def train_steps(official: torch.nn.Module, ours: torch.nn.Module, device: torch.device, quick: bool,
                repeats: int) -> None:
    size = (97, 97) if quick else (473, 473)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1)).to(device)
    y = torch.randint(0, 19, (2, *size), generator=torch.Generator().manual_seed(2)).to(device)
    official.train(), ours.train()
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")

    def step_of(name: str) -> Callable[[], None]:
        model = official if name == "official" else ours
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        dtype = {"ours-bf16": torch.bfloat16, "ours-fp16-amp": torch.float16}.get(name)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()

        def step() -> None:
            with autocast:
                if name == "official":
                    _, main, aux = model(x, y)
                    loss = main + 0.4 * aux
                else:
                    outputs = model(x.contiguous(memory_format=torch.channels_last))
            if name != "official":
                loss, _ = pspnet_loss({k: v.float() for k, v in outputs.items()}, y, aux_weight=0.4)
            if name == "ours-fp16-amp":
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    names = ["official", "ours", "ours-bf16"] + (["ours-fp16-amp"] if device.type == "cuda" else [])
    reference = None
    for name in names:
        reset_peak(device)
        seconds, _ = timed(step_of(name), device, repeats)
        reference = reference or seconds
        say("paper", f"train step {name}: {1e3 * seconds:.1f} ms, ratio {seconds / reference:.2f}{peak_mb(device)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="a new folder for the runs and gpu_check.json")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a trial run of the script)")
    parser.add_argument("--quick", action="store_true", help="small inputs and short runs")
    parser.add_argument("--parts", nargs="+", default=["train", "paper"], choices=["train", "paper"])
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        sys.exit(f"error: {out} exists; name a new folder (nothing is overwritten)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA device here; run it on a machine with a GPU, or --device cpu for a trial run")
    out.mkdir(parents=True)
    iters, repeats = (10, 2) if args.quick else (200, 10)
    machine(device)
    parts = {"train": lambda: trainings(device, iters, out), "paper": lambda: paper(device, args.quick, repeats)}
    for name in args.parts:
        start = time.perf_counter()
        try:
            parts[name]()
        except Exception as error:  # recorded; the next part still runs
            lines = str(error).strip().splitlines() or [""]
            say(name, f"FAILED: {type(error).__name__}: {lines[-1]}")
        RESULTS.setdefault(name, {})["seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_check.json").write_text(json.dumps(RESULTS, indent=1) + "\n")
    print(f"written: {out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
