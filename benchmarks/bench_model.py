"""The "paper" PSPNet beside the author's official code on this CPU: time, memory, FLOPs, agreement.

Usage (from the repository root):

    python benchmarks/bench_model.py                 # full sizes: a few minutes
    python benchmarks/bench_model.py --quick         # smaller inputs, fewer repeats
    python benchmarks/bench_model.py --tasks infer   # one task only
    python benchmarks/bench_model.py --tasks infer --compile   # also the prepared model compiled

Tasks:
  * train: one SGD step (forward, loss main + 0.4 aux, backward, update), batch 2 x 473x473;
  * infer: one forward pass under ``torch.inference_mode``, 1 x 513x1025 (the official code
    asserts sizes 8n+1, so both get 513x1025).
Models (``official`` is tests/reference/semseg_pspnet.py, a transcription of hszhao/semseg
``PSPNet(layers=50)``; ours are ``build_pspnet("paper")`` with the official weights converted
by ``pspnet_edu.convert``, so both compute the same function):
  * train: ``official`` fp32; ``ours`` as the trainer runs it (channels_last) in fp32 and with
    bf16 autocast;
  * infer: ``official`` fp32; ``ours`` (the training model in eval mode, aux head included);
    ``prepared`` = ``pspnet_edu.inference.prepare_for_inference`` (no aux head, BatchNorm
    folded, the pyramid folded into the head's conv, channels_last) in fp32 and bf16; with ``--compile`` also ``prepared-compiled``, the
    prepared fp32 model through ``torch.compile`` (inductor) with freezing on: the weights become
    constants, so inductor's CPU passes can fuse a convolution with the ReLU or residual add after
    it and prepack its weights for oneDNN; the first call (compilation and one pass) is printed.

Measured:
  * time: all models of a task in one process, their steps interleaved (official, ours, ...,
    official, ours, ...) after a warm-up, so that a shared machine slows them alike; the ratio
    to the official fp32 time is taken per round and its median (and min-max) reported;
  * agreement (infer): max |logit difference| of prepared fp32 against official, and the share
    of pixels whose argmax agrees for prepared bf16;
  * memory: each model alone in a fresh process: the peak resident set size (weights,
    activations, gradients, optimizer state and the Python/torch runtime);
  * FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2).
Targets are printed beside the figures, never asserted.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pspnet_edu.convert import semseg_to_pspnet_edu
from pspnet_edu.inference import prepare_for_inference
from pspnet_edu.loss import pspnet_loss
from pspnet_edu.provenance import machine
from pspnet_edu.pspnet import build_pspnet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for reference/semseg_pspnet.py
from reference.semseg_pspnet import PSPNet as OfficialPSPNet  # noqa: E402

MODELS = {"train": ("official", "ours", "ours-bf16"), "infer": ("official", "ours", "prepared", "prepared-bf16")}
TARGETS = {("infer", "prepared"): 0.85, ("infer", "prepared-bf16"): 0.45}  # issue 10: time vs official fp32


def official_and_ours() -> tuple[nn.Module, nn.Module]:
    """The official model with random weights and non-trivial BatchNorm, and ours with the same weights."""
    torch.manual_seed(0)
    official = OfficialPSPNet(layers=50, classes=19, pretrained=False)
    for module in official.modules():  # fresh BN layers are the identity in eval mode and would hide a mix-up
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    ours = build_pspnet("paper")
    ours.load_state_dict(semseg_to_pspnet_edu(official.state_dict()))
    return official, ours


def compiled(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    """``model`` through inductor with freezing on (inference only: the weights become constants)."""
    import torch._inductor.config as inductor_config  # only --compile needs inductor

    inductor_config.freezing = True
    return torch.compile(model)


def build(name: str, task: str, same_weights: bool = True) -> tuple[Callable[[torch.Tensor], Any], nn.Module]:
    """(forward function, module) of one model in one task; ``same_weights=False`` builds that model alone
    (random weights), as the memory measurement needs."""
    if same_weights:
        official, ours = official_and_ours()
    elif name == "official":
        official = OfficialPSPNet(layers=50, classes=19, pretrained=False)
    else:
        ours = build_pspnet("paper")
    if name == "official":
        return (lambda x: official(x)), official.train(task == "train")
    if name.startswith("prepared"):
        prepared = prepare_for_inference(ours.eval(), precision="bf16" if name.endswith("bf16") else "fp32")
        run = compiled(prepared) if name.endswith("compiled") else prepared
        return (lambda x: run(x)["out"]), prepared
    ours = ours.to(memory_format=torch.channels_last).train(task == "train")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if name.endswith("bf16") else contextlib.nullcontext()

    def forward(x: torch.Tensor) -> Any:
        with autocast:
            return ours(x.contiguous(memory_format=torch.channels_last))

    return forward, ours


def step_function(name: str, task: str, batch: int, size: tuple[int, int], same_weights: bool = True) -> Callable[[], Any]:
    """A closure running one step (train) or one forward pass (infer) of ``name``."""
    forward, module = build(name, task, same_weights)
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 19, (batch, *size), generator=torch.Generator().manual_seed(2))
    if task == "infer":
        def infer() -> Any:
            with torch.inference_mode():
                return forward(x)
        return infer
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-4, momentum=0.9)

    def train() -> None:
        if name == "official":
            _, main, aux = module(x, y)
            loss = main + 0.4 * aux
        else:
            loss, _ = pspnet_loss({k: v.float() for k, v in forward(x).items()}, y, aux_weight=0.4)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return train


def run_timing(case: dict[str, Any]) -> dict[str, Any]:
    """Interleaved steps of every model of the task; per-round ratios to official; agreement (infer)."""
    torch.set_num_threads(case["threads"])
    steps = {name: step_function(name, case["task"], case["batch"], tuple(case["size"])) for name in case["models"]}
    times: dict[str, list[float]] = {name: [] for name in steps}
    first: dict[str, float] = {}
    outputs: dict[str, Any] = {}
    for index in range(case["warmup"] + case["repeats"]):
        for name, step in steps.items():
            start = time.perf_counter()
            outputs[name] = step()
            seconds = time.perf_counter() - start
            if index >= case["warmup"]:
                times[name].append(seconds)
            else:
                first.setdefault(name, seconds)
    result: dict[str, Any] = {"times": times, "first": first}
    if case["task"] == "infer":
        official = outputs["official"]
        result["max_logit_diff"] = float((outputs["prepared"] - official).abs().max())
        if "prepared-compiled" in outputs:
            result["compiled_max_logit_diff"] = float((outputs["prepared-compiled"] - official).abs().max())
        result["bf16_argmax_agreement"] = float((outputs["prepared-bf16"].argmax(1) == official.argmax(1))
                                                .float().mean())
    return result


def run_memory(case: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of one model alone in this fresh process (a warm-up step and one step)."""
    torch.set_num_threads(case["threads"])
    (name,) = case["models"]
    step = step_function(name, case["task"], case["batch"], tuple(case["size"]), same_weights=False)
    for _ in range(2):
        step()
    return {"peak_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's ``ru_maxrss`` survives ``exec``: a child started by ``subprocess`` reports at least
    its parent's peak at the fork, which printed the parent's 1805 MB for every model. The
    kernel's ``VmHWM`` (/proc/self/status) belongs to the new program alone; ``ru_maxrss``
    remains the fallback where there is no /proc (macOS reports it in bytes).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def count_flops(name: str, task: str, batch: int, size: tuple[int, int]) -> float:
    """FLOPs of one step of ``name``, counted while it runs once on a small batch and scaled.

    Training counts on 2 images: BatchNorm in training mode needs more than one value per
    channel, and the pyramid's 1x1 bin has one per image.
    """
    small = min(batch, 2) if task == "train" else 1
    step = step_function(name, task, small, size)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops()) * batch / small


def spawn(mode: str, case: dict[str, Any]) -> dict[str, Any]:
    """``run_timing`` or ``run_memory`` in a fresh Python process; its JSON (or an error)."""
    done = subprocess.run([sys.executable, __file__, f"--{mode}", json.dumps(case)], capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def report(task: str, case: dict[str, Any], flops: dict[str, float]) -> None:
    timing = spawn("timing", case)
    if "error" in timing:
        print(f"{task}: {timing['error']}")
        return
    official = timing["times"]["official"]
    for name in case["models"]:
        seconds = timing["times"][name]
        ratios = [a / b for a, b in zip(seconds, official)]
        memory = spawn("memory", {**case, "models": [name]})
        target = TARGETS.get((task, name))
        print(f"{task:<6}{name:<18}{statistics.median(seconds):>8.2f}{spread(seconds):>13}"
              f"{statistics.median(ratios):>9.2f}{spread(ratios):>13}{flops[name] / 1e9:>8.0f}"
              f"{memory.get('peak_mb', float('nan')):>9.0f}  {f'aim <= {target}' if target else ''}", flush=True)
    if "prepared-compiled" in case["models"]:
        print(f"prepared-compiled: first call (compilation and one pass) {timing['first']['prepared-compiled']:.1f} s; "
              f"max |logit difference| to official {timing['compiled_max_logit_diff']:.2e}")
    if task == "infer":
        print(f"agreement: prepared fp32 vs official, max |logit difference| {timing['max_logit_diff']:.2e} "
              f"(aim <= 1e-3); prepared bf16 argmax equal on {100 * timing['bf16_argmax_agreement']:.2f} % of "
              "pixels (aim >= 99 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tasks", nargs="+", default=["train", "infer"], choices=list(MODELS))
    parser.add_argument("--repeats", type=int, help="timed rounds (default 5, --quick 2)")
    parser.add_argument("--compile", action="store_true",
                        help="infer: also the prepared model through torch.compile (about a minute to compile)")
    parser.add_argument("--timing", help=argparse.SUPPRESS)  # internal: one case, print JSON
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # internal: one case, print JSON
    args = parser.parse_args()
    if args.timing or args.memory:
        case = json.loads(args.timing or args.memory)
        print(json.dumps(run_timing(case) if args.timing else run_memory(case)))
        return
    sizes = {"train": (2, (233, 233) if args.quick else (473, 473)), "infer": (1, (257, 513) if args.quick else (513, 1025))}
    repeats = args.repeats or (2 if args.quick else 5)
    print(machine())
    print(f"torch {torch.__version__}, {args.threads} threads; median (min-max) of {repeats} interleaved rounds after "
          "1 warm-up; ratio: to the official fp32 time in the same round; peak RSS of a fresh process")
    print(f"{'task':<6}{'model':<18}{'time s':>8}{'spread':>13}{'ratio':>9}{'spread':>13}{'GFLOP':>8}{'peak MB':>9}")
    for task in args.tasks:
        batch, size = sizes[task]
        models = list(MODELS[task]) + (["prepared-compiled"] if args.compile and task == "infer" else [])
        case = {"task": task, "models": models, "batch": batch, "size": list(size), "warmup": 1,
                "repeats": repeats, "threads": args.threads}
        flops = {name: count_flops(name.removesuffix("-compiled"), task, batch, size) for name in models}
        report(f"{task}", case, flops)


if __name__ == "__main__":
    main()
