"""PyTorch-on-CPU peer of pgn-ood's scores (issue 6): the same per-pixel scores written as tensor
operations, the way the authors' code does, on the same .npy files. Prints one JSON line with the
median seconds per image. Benchmark peer only; never a runtime dependency.

    /usr/bin/python3 bench/peers/torch_scores.py DIR REPEATS   (DIR holds <i>.logits.npy, <i>.features.npy)
"""
import json
import os
import sys
import time

import numpy as np
import torch

PS = [0.1, 0.3, 0.5, 1.0, 2.0]


def scores(z, phi):
    s = torch.softmax(z, dim=1)
    onehot = torch.nn.functional.one_hot(z.argmax(1), z.shape[1]).permute(0, 3, 1, 2).to(s.dtype)
    out = {}
    for p in PS:
        feat = (phi.abs() ** p).sum(1) ** (1 / p)
        out[f'pgn-oh_p{p}'] = ((s - onehot).abs() ** p).sum(1) ** (1 / p) * feat
        out[f'pgn-uni_p{p}'] = ((s - 1 / z.shape[1]).abs() ** p).sum(1) ** (1 / p) * feat
    out['entropy'] = -(s * torch.log_softmax(z, dim=1)).sum(1)
    out['msp'] = 1 - s.max(1).values
    return out


def main():
    folder, repeats = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(int(os.environ.get('PGN_THREADS', '0')) or os.cpu_count())
    stems = sorted({f.split('.')[0] for f in os.listdir(folder) if f.endswith('.logits.npy')})
    tensors = [(torch.from_numpy(np.load(os.path.join(folder, f'{s}.logits.npy'))),
                torch.from_numpy(np.load(os.path.join(folder, f'{s}.features.npy')))) for s in stems]
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            for z, phi in tensors:
                t0 = time.perf_counter()
                scores(z, phi)
                times.append(time.perf_counter() - t0)
    print(json.dumps({'images': len(stems), 'medianSeconds': float(np.median(times)), 'threads': torch.get_num_threads()}))


main()
