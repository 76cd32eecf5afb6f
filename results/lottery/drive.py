"""Exploration driver (not the package's sweep): one DEMO_RECIPE run with overrides.

    python results/lottery/drive.py NAME SEED '{"class_weights": [...], "model": {"ppm_channels": 64}}'

Run at commit a4213dd (its DEMO_RECIPE: no class weights, 32 channels per level). Written before the
package had class weights: it passes them to the cross-entropy by replacing
pspnet_edu.loss._cross_entropy (today: TrainConfig.class_weighting). Writes RUNS/NAME/seedS (RUNS: the environment variable, default runs/lottery).
"""
import dataclasses, json, sys, time, os
RUNS = os.environ.get("RUNS", "runs/lottery")
import torch
torch.set_num_threads(1)
import torch.nn.functional as F
import pspnet_edu.training.step as step
import pspnet_edu.loss as L
from pspnet_edu.experiments.demo import DEMO_RECIPE
from pspnet_edu.training import train_from_config
name, seed, over = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
weights = over.pop("class_weights", None)
if weights:
    w = torch.tensor(weights, dtype=torch.float32)
    def ce(logits, target, ignore_index):
        if not (target != ignore_index).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits, target, weight=w.to(logits.dtype), ignore_index=ignore_index)
    L._cross_entropy = ce
model_over = over.pop("model", {})
cfg = dataclasses.replace(DEMO_RECIPE, seed=seed, data=os.environ.get("DATA", "data/synthcity"), out=f"{RUNS}/{name}/seed{seed}",
                          model=dataclasses.replace(DEMO_RECIPE.model, **model_over), **over)
t = time.time()
r = train_from_config(cfg, progress=False)
print(json.dumps({"name": name, "seed": seed, "time": time.time()-t}))
