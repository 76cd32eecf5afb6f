"""Where is the cue lost? Linear probes of the glow and the clouds on pooled features of a trained run.

    python results/lottery/probe.py RUN/last.pt SYNTHCITY_ROOT

Fits least squares on the 300 train images' globally averaged layer4 features (the PPM's input,
"ppm_in") and on the 1x1 bin's output ("bin1"), and reports the accuracy on the 60 val images
(glow: only images with a long vehicle; clouds: all images).
"""
import sys, torch, json
torch.set_num_threads(1)
from pspnet_edu.data import CityscapesSegmentation, EvalTransforms
from pspnet_edu.training import load_checkpoint, model_from_checkpoint
ck = load_checkpoint(sys.argv[1]); model = model_from_checkpoint(ck).eval()
feats = {}
def hook(name):
    def f(m, i, o): feats[name] = (i[0] if name == "ppm_in" else o).detach()
    return f
model.ppm.register_forward_hook(hook("ppm_in")) if model.ppm is not None else None
if model.ppm is not None:
    model.ppm.branches[0].register_forward_hook(hook("bin1"))
def collect(split):
    ds = CityscapesSegmentation(sys.argv[2], split, transforms=EvalTransforms())
    X = {"ppm_in": [], "bin1": []}; y = []
    for i in range(len(ds)):
        img, m = ds[i]
        with torch.no_grad(): model(img[None])
        X["ppm_in"].append(feats["ppm_in"].mean((2, 3))[0]); X["bin1"].append(feats["bin1"].flatten())
        y.append(((m == 16).any().item(), (m == 15).any().item(), (m == 8).any().item()))
    return {k: torch.stack(v) for k, v in X.items() if v and v[0] is not None}, torch.tensor(y)
Xtr, ytr = collect("train"); Xva, yva = collect("val")
def probe(Xa, ya, Xb, yb):
    mu, sd = Xa.mean(0), Xa.std(0) + 1e-6
    A, B = (Xa - mu) / sd, (Xb - mu) / sd
    w = torch.linalg.lstsq(torch.cat([A, torch.ones(len(A), 1)], 1), ya.float() * 2 - 1, driver="gelsd").solution
    pred = torch.cat([B, torch.ones(len(B), 1)], 1) @ w > 0
    return (pred == yb).float().mean().item()
out = {}
for k in Xtr:
    veh_tr = ytr[:, 0] | ytr[:, 1]; veh_va = yva[:, 0] | yva[:, 1]
    out[k] = {"glow": probe(Xtr[k][veh_tr], ytr[veh_tr, 0], Xva[k][veh_va], yva[veh_va, 0]),
              "clouds": probe(Xtr[k], ytr[:, 2], Xva[k], yva[:, 2])}
print(json.dumps({"run": "/".join(sys.argv[1].split("/")[-3:-1]), "linear probe accuracy on val": out}))
