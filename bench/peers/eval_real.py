"""Python peer of `pgn eval --tensors` for the benchmark (issue 8): the same evaluation of one data set
of ../shared/real in NumPy + scikit-learn (Debian packages), timed end to end. Prints one JSON line.
Run by bench/eval-real.js; dev/benchmark only, never a runtime dependency.

    /usr/bin/python3 bench/peers/eval_real.py DATASET pgn-oh:p=0.5 entropy
"""
import json
import os
import sys
import time

import cv2
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def score(kind, p, z, phi):
    z = z.astype(np.float64)
    m = z.max(0)
    e = np.exp(z - m)
    s = e / e.sum(0)
    if kind == 'entropy':
        return -(s * np.log(np.maximum(s, 1e-300))).sum(0)
    if kind == 'msp':
        return 1 - s.max(0)
    if kind == 'maxlogit':
        return -m
    onehot = np.zeros_like(s)
    np.put_along_axis(onehot, z.argmax(0)[None], 1, axis=0)
    y = onehot if kind == 'pgn-oh' else np.full_like(s, 1 / s.shape[0])
    label = (np.abs(s - y) ** p).sum(0) ** (1 / p)
    feat = (np.abs(phi.astype(np.float64)) ** p).sum(0) ** (1 / p)
    return label * feat


def main():
    root, specs = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(root, 'labels_masks')))
    scores = {s: [] for s in specs}
    labels = []
    for stem in stems:
        mask = cv2.imread(os.path.join(root, 'labels_masks', stem + '.png'), cv2.IMREAD_UNCHANGED)
        z = np.load(os.path.join(root, 'tensors', stem + '.logits.npy'))[0]
        phi = np.load(os.path.join(root, 'tensors', stem + '.features.npy'))[0]
        keep = mask != 255
        labels.append(mask[keep] == 1)
        for spec in specs:
            kind, _, rest = spec.partition(':')
            p = float(rest.split('=')[1]) if rest else None
            small = score(kind, p, z, phi).astype(np.float32)
            # cv2's INTER_LINEAR uses half-pixel centres, as F.interpolate(align_corners=False) does.
            full = cv2.resize(small, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
            scores[spec].append(full[keep])
    y = np.concatenate(labels)
    out = {}
    for spec in specs:
        s = np.concatenate(scores[spec])
        fpr, tpr, _ = roc_curve(y, s)
        out[spec] = {'auroc': roc_auc_score(y, s), 'auprc': average_precision_score(y, s), 'fpr95': float(fpr[np.argmax(tpr >= 0.95)])}
    print(json.dumps({'seconds': time.perf_counter() - t0, 'figures': out}))


main()
