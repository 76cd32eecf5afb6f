"""Speed, memory and FLOPs of the "paper" PSPNet beside the author's official code.

Usage (from the repository root):

    python benchmarks/bench_model.py            # full sizes, a few minutes per case on a CPU
    python benchmarks/bench_model.py --quick    # smaller inputs, fewer repeats
    python benchmarks/bench_model.py --tiny     # the measurement behind the "tiny" preset

Cases:
  * train: one SGD step (forward, loss main + 0.4 aux, backward, update), 473x473, batch 2;
  * infer: one forward pass under ``torch.inference_mode``, batch 1, 513x1025 (the official
    code asserts sizes 8n+1, so both models get 513x1025 instead of 512x1024).
Models: ``ours`` (``build_pspnet("paper")``; its eval forward also computes the auxiliary
logits, as its interface demands), ``ours-noaux`` (inference only: ``aux=False``, the same
computation as the official eval forward) and ``official`` (tests/reference/semseg_pspnet.py,
a transcription of hszhao/semseg). Precisions: fp32, fp32 channels_last and bf16 autocast on
the CPU, plus fp32 and fp16 AMP on CUDA when a GPU is present. ``--quick``: 233x233 and
257x513, two timed steps.

Measured:
  * time: median over the timed steps after one warm-up step; all models of a case run in one
    fresh process with their steps interleaved (ours, official, ours, ...), so that a shared,
    unevenly loaded machine slows them alike;
  * memory: each model alone in another fresh process (a warm-up step and one step): the peak
    resident set size ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (weights, activations,
    gradients, optimizer state, allocator caches and the Python/torch runtime), and "+MB",
    its growth over the peak after building the model and the input; on CUDA
    ``torch.cuda.max_memory_allocated``;
  * FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (convolutions and
    matrix products, forward and backward for train; a multiply-add counts 2), and
    GFLOP/s = FLOPs / median time.
Performance targets are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for reference/semseg_pspnet.py


def build(model_name: str, num_classes: int = 19) -> torch.nn.Module:
    if model_name == "official":
        from reference.semseg_pspnet import PSPNet as OfficialPSPNet

        return OfficialPSPNet(layers=50, classes=num_classes, pretrained=False)
    from pspnet_edu.pspnet import build_pspnet

    return build_pspnet("paper", num_classes=num_classes, aux=model_name != "ours-noaux")


def step_function(model_name: str, model: torch.nn.Module, task: str, x: torch.Tensor,
                  y: torch.Tensor, optimizer: torch.optim.Optimizer | None):
    """A closure that runs one training step or one inference forward."""
    from pspnet_edu.loss import pspnet_loss

    def train_step() -> None:
        if model_name == "official":
            _, main, aux = model(x, y)
            loss = main + 0.4 * aux
        else:
            loss, _ = pspnet_loss(model(x), y, aux_weight=0.4 if model_name == "ours" else 0.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer_step() -> None:
        with torch.inference_mode():
            out = model(x)
            _ = out if model_name == "official" else out["out"]

    return train_step if task == "train" else infer_step


def prepare(model_name: str, case: dict):
    """Model, its step closure and the device for one model in one case."""
    device = "cuda" if case["precision"].startswith("cuda") else "cpu"
    torch.manual_seed(0)
    model = build(model_name).to(device)
    batch, (height, width) = case["batch"], case["size"]
    x = torch.randn(batch, 3, height, width, device=device)
    y = torch.randint(0, 19, (batch, height, width), device=device)
    if case["precision"] == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train(case["task"] == "train")
    optimizer = (torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
                 if case["task"] == "train" else None)
    return step_function(model_name, model, case["task"], x, y, optimizer), device


def autocast_for(precision: str):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "cuda_amp":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def timed(step, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run_timing(case: dict) -> dict:
    """Median step time of every model of the case, their steps interleaved.

    The machine may be shared: interleaving (ours, official, ours, official, ...) exposes all
    models to the same load, which separate runs would not.
    """
    torch.set_num_threads(case["threads"])
    steps = {name: prepare(name, case) for name in case["models"]}
    times: dict[str, list[float]] = {name: [] for name in steps}
    with autocast_for(case["precision"]):
        for index in range(case["warmup"] + case["repeats"]):
            for name, (step, device) in steps.items():
                elapsed = timed(step, device)
                if index >= case["warmup"]:
                    times[name].append(elapsed)
    return {name: {"time": statistics.median(t), "times": t} for name, t in times.items()}


def run_memory(case: dict) -> dict:
    """Peak memory of one model, alone in this (fresh) process: warm-up step + one step."""
    torch.set_num_threads(case["threads"])
    (name,) = case["models"]
    step, device = prepare(name, case)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: KB)
    with autocast_for(case["precision"]):
        for _ in range(2):
            timed(step, device)
    if device == "cuda":
        return {"peak_mb": torch.cuda.max_memory_allocated() / 2**20, "growth_mb": float("nan")}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mb": peak, "growth_mb": peak - rss_before}


def count_flops(model_name: str, task: str, batch: int, size: tuple[int, int]) -> float:
    """FLOPs of one step, counted on the meta device (no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build(model_name).train(task == "train")
        x = torch.randn(batch, 3, *size)
        y = torch.randint(0, 19, (batch, *size))
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4) if task == "train" else None
        counter = FlopCounterMode(display=False)
        with counter:
            if task == "train":  # forward and backward; the update has no matmul/conv
                if model_name == "official":
                    _, main, aux = model(x, y)
                    loss = main + 0.4 * aux
                else:  # the loss has no matmul/conv: F.cross_entropy stands for pspnet_loss
                    out = model(x)
                    loss = torch.nn.functional.cross_entropy(out["out"], y, ignore_index=255)
                    if "aux" in out:
                        loss = loss + 0.4 * torch.nn.functional.cross_entropy(out["aux"], y)
                loss.backward()
            else:
                with torch.no_grad():
                    model(x)
    del optimizer
    return float(counter.get_total_flops())


def spawn(mode: str, case: dict) -> dict:
    """Run ``run_timing`` or ``run_memory`` in a fresh Python process and return its JSON."""
    result = subprocess.run(
        [sys.executable, __file__, f"--{mode}", json.dumps(case)],
        capture_output=True, text=True, cwd=ROOT,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def paper_benchmark(quick: bool, threads: int, models: list[str], precisions: list[str],
                    repeats: int | None, only_tasks: list[str]) -> None:
    tasks = {"train": (2, (233, 233) if quick else (473, 473)),
             "infer": (1, (257, 513) if quick else (513, 1025))}
    warmup, repeats = 1, repeats or (2 if quick else 3)
    if torch.cuda.is_available():
        precisions = precisions + ["cuda_fp32", "cuda_amp"]
    print(f"torch {torch.__version__}, {threads} threads; time: median of {repeats} steps after "
          f"{warmup} warm-up, models interleaved; memory: peak RSS of a fresh process "
          "(+MB: growth during two steps)")
    header = (f"{'task':<6}{'size':>15} {'model':<11}{'precision':<14}{'time s':>8}"
              f"{'GFLOP':>9}{'GFLOP/s':>9}{'peak MB':>9}{'+MB':>7}")
    print(header)
    print("-" * len(header))
    for task, (batch, size) in tasks.items():
        if task not in only_tasks:
            continue
        task_models = [m for m in models if not (task == "train" and m == "ours-noaux")]
        flops = {m: count_flops(m, task, batch, size) for m in task_models}
        for precision in precisions:
            case = dict(models=task_models, task=task, precision=precision, batch=batch,
                        size=size, warmup=warmup, repeats=repeats, threads=threads)
            timing = spawn("timing", case)
            label = f"{batch}x{size[0]}x{size[1]}"
            for model_name in task_models:
                memory = spawn("memory", dict(case, models=[model_name]))
                prefix = f"{task:<6}{label:>15} {model_name:<11}{precision:<14}"
                if "error" in timing or "error" in memory:
                    print(prefix + " " + timing.get("error", memory.get("error", "")))
                    continue
                seconds = timing[model_name]["time"]
                gflop = flops[model_name] / 1e9
                print(f"{prefix}{seconds:>8.2f}{gflop:>9.0f}{gflop / seconds:>9.1f}"
                      f"{memory['peak_mb']:>9.0f}{memory['growth_mb']:>7.0f}", flush=True)


TINY_CANDIDATES = [  # (depth, width, head_channels, aux_channels)
    (18, 0.125, 32, 16),
    (18, 0.25, 64, 32),
    (18, 0.5, 128, 64),
    (34, 0.25, 64, 32),
    (50, 0.125, 64, 32),
]


def tiny_benchmark(threads: int, steps: int, candidates: list[int]) -> None:
    """Training-step time of candidate tiny nets: batch 8, 128x256, with and without PPM."""
    from torch.utils.flop_counter import FlopCounterMode

    from pspnet_edu.loss import pspnet_loss
    from pspnet_edu.pspnet import build_pspnet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 128, 256)
    y = torch.randint(0, 19, (8, 128, 256))
    print(f"batch 8, 128x256, {threads} threads, median of {steps} SGD steps after 2 warm-up")
    print(f"{'depth':>5}{'width':>6}{'head/aux':>9}{'use_ppm':>8}{'params':>10}{'GFLOP':>7}"
          f"{'s/step':>8}")
    for depth, width, head, aux in [TINY_CANDIDATES[i] for i in candidates]:
        for use_ppm in (True, False):
            kwargs = dict(depth=depth, width=width, head_channels=head, aux_channels=aux,
                          use_ppm=use_ppm)
            model = build_pspnet("tiny", **kwargs).train()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            counter = FlopCounterMode(display=False)
            times = []
            for index in range(steps + 2):
                start = time.perf_counter()
                with counter if index == 0 else contextlib.nullcontext():  # count the first
                    loss, _ = pspnet_loss(model(x), y)
                    loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if index >= 2:
                    times.append(time.perf_counter() - start)
            params = sum(p.numel() for p in model.parameters())
            print(f"{depth:>5}{width:>6}{f'{head}/{aux}':>9}{str(use_ppm):>8}{params:>10,}"
                  f"{counter.get_total_flops() / 1e9:>7.1f}{statistics.median(times):>8.3f}",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--tiny", action="store_true", help="measure the tiny-preset candidates")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", default="ours,ours-noaux,official")
    parser.add_argument("--precisions", default="fp32,channels_last,bf16")
    parser.add_argument("--tasks", default="train,infer")
    parser.add_argument("--steps", type=int, default=8, help="--tiny: timed steps per model")
    parser.add_argument("--candidates", default=",".join(map(str, range(len(TINY_CANDIDATES)))),
                        help="--tiny: indices into TINY_CANDIDATES")
    parser.add_argument("--repeats", type=int, help="timed steps per case (default 3, --quick 2)")
    parser.add_argument("--timing", help=argparse.SUPPRESS)  # internal: one case, print JSON
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # internal: one case, print JSON
    args = parser.parse_args()
    if args.timing:
        print(json.dumps(run_timing(json.loads(args.timing))))
    elif args.memory:
        print(json.dumps(run_memory(json.loads(args.memory))))
    elif args.tiny:
        tiny_benchmark(args.threads, args.steps, [int(i) for i in args.candidates.split(",")])
    else:
        paper_benchmark(args.quick, args.threads, args.models.split(","),
                        args.precisions.split(","), args.repeats, args.tasks.split(","))


if __name__ == "__main__":
    main()
