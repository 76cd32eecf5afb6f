"""Exploration driver for issue 18's thin classes: one DEMO_RECIPE run (eval every 200 steps) whose
PSPNet starts differently. Run from a worktree of commit 8e591d7, two at a time, one thread each:

    RUNS=DIR PYTHONPATH=. python results/lottery/drive_init.py zh SEED '{"zero_head_ppm": true}'
    RUNS=DIR PYTHONPATH=. python results/lottery/drive_init.py zg SEED '{"zero_gamma": true}'

zero_head_ppm: the head conv's weights on the pooled channels start at 0 (the head reads only
layer4 at init, as the FCN's does; those weights get gradient from step 1).
zero_gamma: every pyramid branch's BatchNorm weight starts at 0 (the zero-init of Goyal et al.
2017 for residual blocks; here a ReLU follows, so the branch sits at the ReLU's kink and never
gets a gradient). Writes RUNS/NAME/seedS. Collected by collect_init.py into zero_init.json.
"""
import dataclasses, json, sys, time, os
RUNS = os.environ.get("RUNS", "runs/lottery")
import torch
torch.set_num_threads(1)
import torch.nn as nn
import pspnet_edu.ppm as P
from pspnet_edu.experiments.demo import DEMO_RECIPE
from pspnet_edu.training import train_from_config
name, seed, over = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
if over.pop("zero_gamma", False):
    orig = P.PyramidBranch.__init__
    def init(self, *a, **k):
        orig(self, *a, **k)
        nn.init.zeros_(self.bn.weight)
    P.PyramidBranch.__init__ = init
zero_head = over.pop("zero_head_ppm", False)
if zero_head:
    import pspnet_edu.pspnet as N
    orig_p = N.PSPNet.__init__
    def init_p(self, config):
        orig_p(self, config)
        if config.use_ppm:  # the head's weights on the pooled channels start at 0: PSPNet starts as the FCN
            with torch.no_grad():
                self.head.conv.weight[:, self.backbone.out_channels:] = 0
    N.PSPNet.__init__ = init_p
model_over = over.pop("model", {})
cfg = dataclasses.replace(DEMO_RECIPE, seed=seed, data=os.environ.get("DATA", "data/synthcity"), out=f"{RUNS}/{name}/seed{seed}",
                          eval_every=200, model=dataclasses.replace(DEMO_RECIPE.model, **model_over), **over)
t = time.time()
r = train_from_config(cfg, progress=False)
print(json.dumps({"name": name, "seed": seed, "time": time.time()-t}))
