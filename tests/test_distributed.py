"""The trainer under torchrun: 2 CPU processes, gloo, DDP; both end with the same weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import torch

from pspnet_edu.pspnet import build_pspnet
from pspnet_edu.train import load_checkpoint

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import torch
    from torch import nn
    from pspnet_edu.train import TrainConfig, train

    torch.set_num_threads(1)
    out = sys.argv[1]

    class Toy(torch.utils.data.Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            coarse = torch.randint(0, 4, (8, 1, 6, 6), generator=g).float()
            self.masks = nn.functional.interpolate(coarse, size=(48, 48))[:, 0].long()
            self.images = torch.randn(4, 3, generator=g)[self.masks].permute(0, 3, 1, 2)
        def __len__(self):
            return len(self.masks)
        def __getitem__(self, i):
            flip = bool(torch.rand(()) < 0.5)
            image, mask = self.images[i], self.masks[i]
            return (image.flip(-1), mask.flip(-1)) if flip else (image, mask)

    config = TrainConfig(preset="tiny", num_classes=4, out=out + "/run", iters=3, batch_size=4, crop=(48, 48),
                         log_every=1)
    result = train(config, train_set=Toy(), val_set=Toy())
    rank = int(os.environ["RANK"])
    torch.save({name: p.detach().clone() for name, p in result.model.named_parameters()}, f"{out}/rank{rank}.pt")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_with_gloo_end_with_identical_weights(tmp_path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(script), str(tmp_path)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]

    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name  # DDP averaged the same gradients

    checkpoint = load_checkpoint(tmp_path / "run")  # written by rank 0 only
    assert checkpoint["iteration"] == 3 and checkpoint["world_size"] == 2
    assert [row["iteration"] for row in checkpoint["history"]["val"]] == [3]
    for name, value in rank0.items():
        assert torch.equal(checkpoint["model"][name], value)
    # the weights moved away from their (seeded) initialisation: training did happen
    torch.manual_seed(0)
    initial = dict(build_pspnet("tiny", num_classes=4).named_parameters())
    assert any(not torch.equal(initial[name], value) for name, value in rank0.items())
    assert completed.stdout.count("val mIoU") == 1  # only rank 0 prints
