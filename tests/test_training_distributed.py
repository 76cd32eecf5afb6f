"""The trainer under torchrun: 2 CPU processes (gloo, DDP) learn what one process learns from the whole batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import torch

from pspnet_edu.training import build_model, load_checkpoint
from pspnet_edu.training.config import config_from_dict

# The config's own model, the tiny PSPNet, built from it (so that the checkpoint describes what was
# trained), with dropout 0 and its BatchNorms frozen (torchvision's FrozenBatchNorm2d: fixed
# statistics, as detection models are fine-tuned), so that "each process normalises its own half
# of the batch" (the CPU's deviation, see training.distributed) does not enter the comparison: DDP
# must then give exactly the gradients of the whole batch, up to float rounding.
SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from torchvision.ops import FrozenBatchNorm2d
    from pspnet_edu.pspnet import preset_config
    from pspnet_edu.training import TrainConfig, build_model, train

    torch.set_num_threads(1)
    out, batch = sys.argv[1], int(sys.argv[2])

    class Toy(torch.utils.data.Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            coarse = torch.randint(0, 4, (8, 1, 6, 6), generator=g).float()
            self.masks = nn.functional.interpolate(coarse, size=(48, 48))[:, 0].long()  # tiny: >= 41 pixels
            self.images = torch.randn(4, 3, generator=g)[self.masks].permute(0, 3, 1, 2)
        def __len__(self):
            return len(self.masks)
        def __getitem__(self, i):
            flip = bool(torch.rand(()) < 0.5)  # seeded per (seed, epoch, index) by the trainer
            image, mask = self.images[i], self.masks[i]
            return (image.flip(-1), mask.flip(-1)) if flip else (image, mask)

    def freeze_batchnorm(module):
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key).detach())
                setattr(module, name, frozen)
            else:
                freeze_batchnorm(child)
        return module

    config = TrainConfig(model=preset_config("tiny", num_classes=4, dropout=0.0), out=out, iters=3, batch_size=batch,
                         crop=(48, 48), log_every=1, lr=0.05)
    net = freeze_batchnorm(build_model(config))
    initial = {name: p.detach().clone() for name, p in net.named_parameters()}
    result = train(config, net, Toy(), Toy())
    trained = {name: p.detach().clone() for name, p in result.model.named_parameters()}
    torch.save({"initial": initial, "trained": trained}, out + ".weights.pt")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, name: str, processes: int) -> subprocess.CompletedProcess:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    out = str(tmp_path / name)
    if processes == 1:
        command = [sys.executable, str(script), out, "4"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                   "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script), out, "4"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_learn_what_one_learns_from_the_whole_batch(tmp_path) -> None:
    ddp = launch(tmp_path, "ddp", processes=2)
    single = launch(tmp_path, "single", processes=1)
    ddp_weights, single_weights = torch.load(tmp_path / "ddp.weights.pt"), torch.load(tmp_path / "single.weights.pt")
    a, b = ddp_weights["trained"], single_weights["trained"]
    assert all(torch.equal(ddp_weights["initial"][k], single_weights["initial"][k]) for k in a)  # same start
    assert all(not torch.equal(single_weights["initial"][k], b[k]) for k in b)  # and every tensor learnt
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    checkpoint = load_checkpoint(tmp_path / "ddp")  # written by rank 0 only
    described = build_model(config_from_dict(checkpoint["config"]))  # the network its config describes...
    shapes = {k: v.shape for k, v in described.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert shapes == {k: v.shape for k, v in checkpoint["model"].items()}  # ...is the one trained (BN frozen)
    assert checkpoint["iteration"] == 3 and [row["iteration"] for row in checkpoint["history"]["val"]] == [3]
    assert ddp.stdout.count("val mIoU") == 1 and single.stdout.count("val mIoU") == 1  # only rank 0 prints
