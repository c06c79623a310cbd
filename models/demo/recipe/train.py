"""Train DemoNet on in-distribution procedural scenes only (no OoD objects).

    nice -n 10 /usr/bin/python3 train.py --out /tmp/pgn-demo/demo.pt

Data: a pool of --pool scenes (256x512) rendered up front (scene i of the
training split uses np.random.default_rng([1, i]), so the pool does not depend
on the number of worker processes), then random 192x384 crops + horizontal
flips.  Cross-entropy, Adam, poly learning-rate decay, fixed iteration count.
"""
import argparse
import os
import random
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

import net
import scenes

TRAIN_SPLIT = 1  # split seeds: 1 train, 2 in-distribution validation, 3 OoD eval


def render_train(i):
    img, sem, _ = scenes.render_scene(np.random.default_rng([TRAIN_SPLIT, i]), n_ood=0)
    return img, sem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/pgn-demo/demo.pt")
    ap.add_argument("--pool", type=int, default=2400)
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, nargs=2, default=[192, 384])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many iterations of the --iters schedule (0 = run it all)")
    ap.add_argument("--workers", type=int, default=2, help="processes for rendering the pool")
    args = ap.parse_args()

    torch.set_num_threads(2)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    t0 = time.time()
    with Pool(args.workers) as p:
        data = p.map(render_train, range(args.pool), chunksize=32)
    imgs = np.stack([d[0] for d in data])
    sems = np.stack([d[1] for d in data])
    del data
    print(f"rendered {args.pool} scenes in {time.time() - t0:.0f}s; class freq "
          + " ".join(f"{c}={np.mean(sems == k) * 100:.1f}%" for k, c in enumerate(scenes.CLASSES)), flush=True)

    model = net.DemoNet()
    print(f"params {sum(p.numel() for p in model.parameters())}", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: (1 - it / args.iters) ** 0.9)
    rs = np.random.default_rng(0)
    ch, cw = args.crop
    model.train()
    t1 = time.time()
    run = 0.0
    last = args.stop_after if 0 < args.stop_after < args.iters else args.iters
    for it in range(1, last + 1):
        idx = rs.integers(0, args.pool, args.batch)
        ys = rs.integers(0, scenes.H - ch + 1, args.batch)
        xs = rs.integers(0, scenes.W - cw + 1, args.batch)
        flip = rs.random(args.batch) < 0.5
        bi, bl = [], []
        for j in range(args.batch):
            im = imgs[idx[j], ys[j]:ys[j] + ch, xs[j]:xs[j] + cw]
            lb = sems[idx[j], ys[j]:ys[j] + ch, xs[j]:xs[j] + cw]
            if flip[j]:
                im, lb = im[:, ::-1], lb[:, ::-1]
            bi.append(im)
            bl.append(lb)
        x = net.preprocess(np.ascontiguousarray(np.stack(bi)))
        y = torch.from_numpy(np.ascontiguousarray(np.stack(bl))).long()
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if it > 1 else loss.item()
        if it % 100 == 0:
            el = time.time() - t1
            print(f"it {it} loss {run:.4f} lr {sched.get_last_lr()[0]:.2e} {el:.0f}s "
                  f"eta {el / it * (args.iters - it):.0f}s", flush=True)
        if it % 1000 == 0 or it == last:
            torch.save({"model": model.state_dict(), "iter": it, "args": vars(args)}, args.out)
    print(f"training done: {last} iterations (of a {args.iters}-iteration schedule) in {time.time() - t1:.0f}s "
          f"(total incl. rendering {time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    main()
