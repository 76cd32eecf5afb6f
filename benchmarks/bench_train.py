"""Training speed: images per second of a full SGD step (forward, loss, backward, update).

Measures the trainer's step (``pspnet_edu.training``: two parameter groups, main + 0.4 aux loss)
on random tensors, so that data loading is not counted, for the tiny and paper presets:

- on the CPU in fp32 and with bf16 autocast;
- on a GPU, when one is available, in fp32 and with fp16 AMP (GradScaler) + channels_last.

Run:  python benchmarks/bench_train.py [--presets tiny paper] [--steps 5] [--threads 2]

The numbers depend on the machine and on whatever else runs on it: report them with the
machine, and never assert them in a test.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from pspnet_edu.loss import pspnet_loss
from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.training import TrainConfig, build_optimizer

# (batch, H, W) per preset and device: the tiny model at the course's crop; the paper model at
# a small crop on the CPU (a 713 crop takes tens of seconds per image there) and at the
# paper's 713 crop on a GPU.
SHAPES = {
    ("tiny", "cpu"): (8, 128, 256),
    ("paper", "cpu"): (2, 129, 257),
    ("tiny", "cuda"): (16, 512, 1024),
    ("paper", "cuda"): (8, 713, 713),
}


def images_per_second(preset: str, device: str, precision: str, channels_last: bool, steps: int,
                      warmup: int, shape: tuple[int, int, int]) -> float:
    torch.manual_seed(0)
    batch, height, width = shape
    model = build_pspnet(preset).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, TrainConfig(iters=warmup + steps + 1))
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    images = torch.randn(batch, 3, height, width, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = torch.randint(0, 19, (batch, height, width), device=device)
    autocast = torch.autocast(device, dtype=torch.float16 if precision == "fp16" else torch.bfloat16,
                              enabled=precision != "fp32")

    def step() -> None:
        with autocast:
            outputs = model(images)
        loss, _ = pspnet_loss({k: v.float() for k, v in outputs.items()}, masks, aux_weight=0.4)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    settings = [("cpu", "fp32", False), ("cpu", "bf16", False)]
    if torch.cuda.is_available():
        settings += [("cuda", "fp32", False), ("cuda", "fp16", True)]
    print(f"{'preset':<8}{'device':<7}{'precision':<11}{'channels_last':<15}{'batch x H x W':<16}{'images/s':>10}")
    for preset in args.presets:
        for device, precision, channels_last in settings:
            shape = SHAPES[(preset, device)]
            speed = images_per_second(preset, device, precision, channels_last, args.steps, args.warmup, shape)
            print(f"{preset:<8}{device:<7}{precision:<11}{str(channels_last):<15}"
                  f"{'x'.join(map(str, shape)):<16}{speed:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
