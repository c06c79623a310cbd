"""Evaluate DemoNet and write the model card ../model.json.

    /usr/bin/python3 evaluate.py --ckpt /tmp/pgn-demo/demo.pt --eval ../eval --card ../model.json

* mIoU on 100 in-distribution validation scenes (split seed 2, rendered on the
  fly, not committed), at 256x512 from the model's upsampled logits.
* OoD scores on the eval set (files as committed, i.e. the JPEG images):
  phi = input of the final 1x1 conv [F,64,128], z = K phi + b, s = softmax(z),
  c = argmax z
      pgn-oh:p = (sum_c |s_c - onehot(c)_c|^p)^(1/p) * (sum_f |phi_f|^p)^(1/p)
      entropy  = -sum_c s_c log s_c
      msp      = 1 - max_c s_c
  computed at feature resolution, bilinearly upsampled (align_corners=False)
  to 256x512; AUROC / AuPRC / FPR95 pooled over all non-void eval pixels
  (sklearn), OoD = positive class.
* recommended threshold = 95th percentile of pgn-oh:p=0.5 over in-distribution
  (label 0) eval pixels.
"""
import argparse
import glob
import json
import os
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

import net
import scenes

VAL_SPLIT = 2
SCORES = ["pgn-oh:p=0.5", "pgn-oh:p=1", "pgn-oh:p=2", "entropy", "msp"]


def pgn_oh(s, phi, p):
    onehot = F.one_hot(s.argmax(1), s.shape[1]).permute(0, 3, 1, 2).to(s.dtype)
    g = ((s - onehot).abs() ** p).sum(1) ** (1.0 / p)
    f = (phi.abs() ** p).sum(1) ** (1.0 / p)
    return g * f


@torch.no_grad()
def score_maps(model, x):
    phi = model.features(x).double()
    z = F.conv2d(phi, model.classifier.weight.double(), model.classifier.bias.double())
    s = torch.softmax(z, 1)
    out = {
        "pgn-oh:p=0.5": pgn_oh(s, phi, 0.5),
        "pgn-oh:p=1": pgn_oh(s, phi, 1.0),
        "pgn-oh:p=2": pgn_oh(s, phi, 2.0),
        "entropy": -(s * torch.log(s.clamp_min(1e-300))).sum(1),
        "msp": 1 - s.max(1).values,
    }
    size = x.shape[-2:]
    return {k: F.interpolate(v[:, None], size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
            for k, v in out.items()}


def miou(model, n=100, batch=10):
    conf = np.zeros((7, 7), np.int64)
    for b0 in range(0, n, batch):
        imgs, labs = [], []
        for i in range(b0, min(n, b0 + batch)):
            im, lab, _ = scenes.render_scene(np.random.default_rng([VAL_SPLIT, i]), n_ood=0)
            imgs.append(im)
            labs.append(lab)
        with torch.no_grad():
            pred = model(net.preprocess(np.stack(imgs))).argmax(1).numpy()
        lab = np.stack(labs)
        conf += np.bincount(lab.ravel().astype(np.int64) * 7 + pred.ravel(), minlength=49).reshape(7, 7)
    iou = np.diag(conf) / (conf.sum(0) + conf.sum(1) - np.diag(conf))
    return float(np.mean(iou) * 100), {c: round(float(v) * 100, 2) for c, v in zip(scenes.CLASSES, iou)}, \
        float(np.diag(conf).sum() / conf.sum() * 100)


def ood_metrics(score, label):
    keep = label != 255
    y = (label[keep] == 1).astype(np.uint8)
    sc = score[keep]
    fpr, tpr, _ = roc_curve(y, sc)
    return {"AUROC": round(roc_auc_score(y, sc) * 100, 2),
            "AuPRC": round(average_precision_score(y, sc) * 100, 2),
            "FPR95": round(float(fpr[np.argmax(tpr >= 0.95)]) * 100, 2)}


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ckpt", default="/tmp/pgn-demo/demo.pt")
    ap.add_argument("--eval", default=os.path.join(here, "..", "eval"))
    ap.add_argument("--card", default=os.path.join(here, "..", "model.json"))
    ap.add_argument("--details", default="/tmp/pgn-demo/metrics.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    np.random.seed(0)

    model = net.DemoNet()
    model.load_state_dict(torch.load(args.ckpt, map_location="cpu")["model"])
    model.eval()

    x = torch.randn(1, 3, 256, 512)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        t = time.time()
        for _ in range(20):
            model(x)
    ms = (time.time() - t) / 20 * 1000

    m, per_class, pix_acc = miou(model)
    print(f"val mIoU {m:.2f}  pixel acc {pix_acc:.2f}  per class {per_class}")

    stems = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(args.eval, "images", "*")))
    imgs, labs = [], []
    for st in stems:
        ip = glob.glob(os.path.join(args.eval, "images", st + ".*"))[0]
        im = cv2.cvtColor(cv2.imread(ip, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        im = cv2.resize(im, (512, 256), interpolation=cv2.INTER_LINEAR) if im.shape[:2] != (256, 512) else im
        imgs.append(im)
        labs.append(cv2.imread(os.path.join(args.eval, "labels_masks", st + ".png"), cv2.IMREAD_UNCHANGED))
    label = np.stack(labs)
    maps = {k: [] for k in SCORES}
    for b0 in range(0, len(imgs), 8):
        out = score_maps(model, net.preprocess(np.stack(imgs[b0:b0 + 8])))
        for k in SCORES:
            maps[k].append(out[k])
    maps = {k: np.concatenate(v) for k, v in maps.items()}
    ood = {}
    for k in SCORES:
        ood[k] = ood_metrics(maps[k], label)
        print(f"{k:14s} {ood[k]}")
    thr = float(np.quantile(maps["pgn-oh:p=0.5"][label == 0], 0.95))
    above_ood = float(np.mean(maps["pgn-oh:p=0.5"][label == 1] > thr) * 100)
    print(f"threshold pgn-oh:p=0.5 @5% in-dist FPR: {thr:.6g} (OoD pixels above it: {above_ood:.1f}%)")
    print(f"torch CPU inference 1x3x256x512: {ms:.1f} ms")

    card = {
        "name": "demo",
        "description": "Tiny DeepLabV3+-style street-scene segmenter (7 classes) trained on procedurally "
                       "generated scenes, for demonstrating and testing pixel-wise gradient-norm OoD scoring.",
        "model": "model.onnx",
        "input": {"name": "input", "height": 256, "width": 512, "resize": "stretch", "channelOrder": "rgb",
                  "scale": 255, "mean": list(net.MEAN), "std": list(net.STD)},
        "outputs": {"logits": "logits"},
        "classes": [{"name": c, "color": [int(v) for v in col]} for c, col in zip(scenes.CLASSES, scenes.PALETTE)],
        "recommended": {"score": "pgn-oh:p=0.5", "threshold": float(f"{thr:.6g}")},
        "metrics": {"mIoU": round(m, 2), "ood": ood},
    }
    with open(args.card, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.details)), exist_ok=True)
    with open(args.details, "w") as f:
        json.dump({"mIoU": m, "per_class_IoU": per_class, "pixel_acc": pix_acc, "ood": ood, "threshold": thr,
                   "ood_pixels_above_threshold": above_ood, "torch_cpu_ms": ms,
                   "eval_pixels": {"in": int((label == 0).sum()), "ood": int((label == 1).sum()),
                                   "void": int((label == 255).sum())}}, f, indent=2)


if __name__ == "__main__":
    main()
