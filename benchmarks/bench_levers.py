"""Two speed-ups of issue 17, each timed against the way the trainer went before it (commit 52d8ebc).

Both change the order or the rounding of float operations, so a run's weights changed with them
(commit 175c6c0 adopted both; the committed results made before say their commit):

    loss over rows     one head's cross-entropy with its backward, from (B, K, h, w) channels_last
                       logits upsampled to (B, K, H, W): the loss over the rows of the NHWC logits
                       (the trainer since 175c6c0, no copy) against the log-softmax of an NCHW copy
                       with the gradient copied back to channels_last (the trainer before)
    uint8 resize       the random scale of one 3 x 128 x 256 crop: bilinear, antialiased, on the
                       uint8 image (the trainer since 175c6c0) against the float image (before)

Figures are medians of interleaved repeats; report them with the machine line this prints, and
never assert them in a test.

Run:  python benchmarks/bench_levers.py [--threads 2] [--batch 8] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from pspnet_edu.provenance import machine
from pspnet_edu.training.memory import keep_freed_memory

CLASSES, LOW, HIGH = 19, (16, 32), (128, 256)  # the tiny preset's logits at 1/8 and at full size


def loss_step(batch: int, rows: bool) -> Callable[[], None]:
    """One head's upsampling, cross-entropy (class weights, ignore 255) and backward."""
    logits = torch.randn(batch, CLASSES, *LOW).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, CLASSES, (batch, *HIGH))
    target[:, :10] = 255
    weight = torch.rand(CLASSES) + 0.5

    def step() -> None:
        x = logits.detach().requires_grad_()
        up = F.interpolate(x, HIGH, mode="bilinear", align_corners=False)
        if rows:
            loss = F.cross_entropy(up.permute(0, 2, 3, 1).reshape(-1, CLASSES), target.reshape(-1),
                                   weight=weight, ignore_index=255)
        else:  # the trainer's path before 175c6c0: the gradient-layout hooks PSPNet._upsample had then
            up.register_hook(lambda g: g.contiguous(memory_format=torch.channels_last))
            x.register_hook(lambda g: g.contiguous())
            loss = F.cross_entropy(up, target, weight=weight, ignore_index=255)
        loss.backward()
    return step


def resize_step(scale: float, uint8: bool) -> Callable[[], None]:
    image = torch.randint(0, 256, (3, *HIGH), dtype=torch.uint8)
    if not uint8:
        image = image.float().div_(255)
    size = [round(HIGH[0] * scale), round(HIGH[1] * scale)]
    return lambda: TF.resize(image, size, antialias=True)


def median_ms(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each step, the steps interleaved repeat by repeat (after one warm-up each)."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does
    print(machine())
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats}")
    loss = median_ms({"copy": loss_step(args.batch, rows=False), "rows": loss_step(args.batch, rows=True)},
                     args.repeats)
    print(f"one head's loss with its backward: over rows (the trainer) {loss['rows']:.1f} ms, on an NCHW copy "
          f"(before) {loss['copy']:.1f} ms (two heads save {2 * (loss['copy'] - loss['rows']):.1f} ms a step)")
    for scale in (0.5, 1.5, 2.0):
        ms = median_ms({"float": resize_step(scale, False), "uint8": resize_step(scale, True)}, args.repeats)
        print(f"resize of one crop at scale {scale}: uint8 (the trainer) {ms['uint8']:.2f} ms, float (before) "
              f"{ms['float']:.2f} ms")


if __name__ == "__main__":
    main()
