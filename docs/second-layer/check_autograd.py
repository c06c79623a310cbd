"""Dev-time checks of the pgn2 scores on the demo model (docs/second-layer.md).

    /usr/bin/python3 docs/second-layer/check_autograd.py --ckpt /tmp/pgn-demo/demo.pt --bn-out /tmp/sl-bn
    node docs/second-layer/eval-demo.js --bn /tmp/sl-bn --dump /tmp/sl-dump --maps /tmp/sl-maps
    /usr/bin/python3 docs/second-layer/check_autograd.py --dump /tmp/sl-dump --ckpt /tmp/pgn-demo/demo.pt --maps /tmp/sl-maps

--ckpt with --bn-out: writes bn_scale.npy (gamma / sqrt(var + eps)) and bn_gamma.npy of the head's
  BatchNorm (head.1 of DemoNet) for eval-demo.js --bn: the exported model has it folded.
--dump: the first eval image's tensors (x, phi, z) and pgn-ood's maps at feature resolution, against
  (a) phi and z recomputed in float64 from x with the exported head conv and classifier,
  (b) torch.autograd: dL/dW of the pixel's cross-entropy (one-hot of the prediction, uniform) for 64
      random pixels, its p-norms: W the exported (BN-folded) conv weight, and with --ckpt the
      checkpoint's conv weight before its BatchNorm (pgn-ood's maps computed with bn_scale),
  (c) the exact closed form over the whole map (float64, unfold patches),
  (d) the authors' grad_heatmap (segmentation/network/deepv3.py) transcribed over the whole map: their
      label factors, the channel norm at p = 0.5, gamma alone; the ReLU mask from phi (theirs applies
      the BatchNorm to the conv's input, which cannot run here: 80 input channels, 48 output).
--maps: AUROC / AP / FPR95 with scikit-learn on the upsampled maps eval-demo.js --maps wrote.
"""
import argparse
import os

import numpy as np
import onnx
import onnx.numpy_helper as nh
import torch
import torch.nn.functional as F

P = [0.5, 1.0, 2.0]


def name(kind, p, code=False, bn=False):
    p = f"{p:g}"
    return f"{kind}_p{p}{'_code' if code else ''}{'_bn' if bn else ''}"


def exported_head(model):
    m = onnx.load(model)
    inits = {t.name: nh.to_array(t) for t in m.graph.initializer}
    nodes = {n.name: n for n in m.graph.node}
    conv, cls = nodes["/head/head.0/Conv"], nodes["/classifier/Conv"]
    t = lambda n: torch.from_numpy(inits[n].astype(np.float64))
    return t(conv.input[1]), t(conv.input[2]), t(cls.input[1]), t(cls.input[2])


def checkpoint_head(ckpt):
    sd = torch.load(ckpt, map_location="cpu")["model"]
    d = lambda k: sd[k].double()
    return d("head.0.weight"), d("head.1.weight"), d("head.1.bias"), d("head.1.running_mean"), d("head.1.running_var"), 1e-5


def rel(a, b, floor=1e-30):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


def pnorm(t, p, dims):
    return (t.abs() ** p).sum(dims) ** (1 / p)


def check_dump(dump, model, ckpt):
    x = torch.from_numpy(np.load(os.path.join(dump, "x.npy"))).double()
    phi32 = np.load(os.path.join(dump, "phi.npy"))
    z32 = np.load(os.path.join(dump, "z.npy"))
    W, b, K, beta = exported_head(model)
    maps = lambda n: np.load(os.path.join(dump, n + ".npy"))[0]
    # (a)
    u = F.conv2d(x, W, b, padding=1)
    phi = torch.relu(u)
    z = F.conv2d(phi, K, beta)
    print(f"(a) phi from x: max |diff| {np.abs(phi.numpy() - phi32).max():.2e}; z: {np.abs(z.numpy() - z32).max():.2e}")
    C, Fch = K.shape[0], K.shape[1]
    h, w = z.shape[2:]
    zt = torch.from_numpy(z32).double()  # the logits pgn-ood scored
    s = torch.softmax(zt, 1)
    pred = zt.argmax(1)
    onehot = F.one_hot(pred, C).permute(0, 3, 1, 2).double()
    # (b) autograd at random pixels
    rng = np.random.default_rng(0)
    pix = [(int(a), int(c)) for a, c in zip(rng.integers(0, h, 64), rng.integers(0, w, 64))]
    xpad = F.pad(x, (1, 1, 1, 1))
    variants = [("folded", W, b, None)]
    if ckpt:
        W0, g_, bb, mu, var, eps = checkpoint_head(ckpt)
        variants.append(("unfolded", W0, None, (g_, bb, mu, var, eps)))
    for label, Wv, bv, bn in variants:
        worst = 0.0
        for a, c in pix:
            win = xpad[:, :, a:a + 3, c:c + 3]
            for kind in ("pgn2-oh", "pgn2-uni"):
                Wg = Wv.clone().requires_grad_(True)
                uu = F.conv2d(win, Wg, bv)
                if bn is not None:
                    g_, bb, mu, var, eps = bn
                    uu = (uu - mu[None, :, None, None]) / torch.sqrt(var + eps)[None, :, None, None] * g_[None, :, None, None] + bb[None, :, None, None]
                zz = F.conv2d(torch.relu(uu), K, beta)[0, :, 0, 0]
                y = F.one_hot(zt[0, :, a, c].argmax(), C).double() if kind == "pgn2-oh" else torch.full((C,), 1.0 / C, dtype=torch.float64)
                loss = -(y * torch.log_softmax(zz, 0)).sum()
                grad, = torch.autograd.grad(loss, Wg)
                for p in P:
                    ref = float(pnorm(grad, p, None))
                    got = float(maps(name(kind, p, bn=bn is not None))[a, c])
                    worst = max(worst, abs(got - ref) / max(ref, 1e-30))
        print(f"(b) autograd, {label} conv weight, {len(pix)} pixels x 2 labels x p in {P}: max relative error {worst:.2e}")
    # (c) closed form, whole map
    patches = F.unfold(x, (3, 3), padding=1).reshape(1, x.shape[1], 9, h, w)
    mask = (torch.from_numpy(phi32).double() > 0).double()
    worst = 0.0
    for kind, r in (("pgn2-oh", s - onehot), ("pgn2-uni", s - 1.0 / C)):
        g = torch.einsum("cf,nchw->nfhw", K[:, :, 0, 0], r) * mask
        for p in P:
            ref = (pnorm(g, p, 1) * pnorm(patches, p, (1, 2)))[0].numpy()
            worst = max(worst, rel(maps(name(kind, p)), ref, 1e-12))
    print(f"(c) closed form over the {h}x{w} map, both labels, p in {P}: max relative error {worst:.2e}")
    # (d) the authors' grad_heatmap, transcribed
    weight_oh = s * (1 - onehot)
    weight_uni = (C - 1) / C * s
    kernel_T = K.squeeze(3).permute(2, 1, 0)
    patches_a = F.unfold(x, (3, 3), padding=1).permute(0, 2, 1).reshape(1, h, w, x.shape[1], 9).permute(0, 3, 1, 2, 4)
    relu_deriv = mask[:, :, None, :, :]
    scales = [("", torch.ones(1, Fch, dtype=torch.float64))]
    if ckpt:
        scales.append(("_bn", checkpoint_head(ckpt)[1].unsqueeze(0)))
    for suffix, bn_scale in scales:
        worst = 0.0
        for kind, weight in (("pgn2-oh", weight_oh), ("pgn2-uni", weight_uni)):
            s_w = torch.sum(weight[:, None, None, :, :, :] * kernel_T[:, :, None, :, None, None], dim=3)
            for p in P:
                ref = (torch.norm(s_w * relu_deriv * bn_scale[..., None, None, None], dim=(1), p=0.5).squeeze()
                       * torch.norm(patches_a, dim=(1, 4), p=p)).numpy()
                worst = max(worst, rel(np.load(os.path.join(dump, name(kind, p, code=True) + suffix + ".npy"))[0], ref[0] if ref.ndim == 3 else ref, 1e-12))
        print(f"(d) authors' formula{' with gamma' if suffix else ''}, variant=code, p in {P}: max relative error {worst:.2e}")


def write_bn(ckpt, out):
    _, gamma, _, _, var, eps = checkpoint_head(ckpt)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "bn_scale.npy"), (gamma / torch.sqrt(var + eps)).float().numpy())
    np.save(os.path.join(out, "bn_gamma.npy"), gamma.float().numpy())
    print(f"wrote {out}/bn_scale.npy, bn_gamma.npy")


def sklearn_check(maps_dir):
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
    labels = np.load(os.path.join(maps_dir, "labels.npy")).ravel()
    keep = labels != 255
    y = labels[keep] == 1
    for f in sorted(os.listdir(maps_dir)):
        if f == "labels.npy":
            continue
        s = np.load(os.path.join(maps_dir, f)).ravel()[keep].astype(np.float64)
        fpr, tpr, _ = roc_curve(y, s)
        print(f"sklearn {f[:-4]:>14}: AUROC {100 * roc_auc_score(y, s):6.2f}  AP {100 * average_precision_score(y, s):6.2f}  "
              f"FPR95 {100 * fpr[np.searchsorted(tpr, 0.95)]:6.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "..", "models", "demo", "model.onnx"))
    ap.add_argument("--ckpt")
    ap.add_argument("--bn-out")
    ap.add_argument("--dump")
    ap.add_argument("--maps")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.ckpt and args.bn_out:
        write_bn(args.ckpt, args.bn_out)
    if args.dump:
        check_dump(args.dump, args.model, args.ckpt)
    if args.maps:
        sklearn_check(args.maps)


if __name__ == "__main__":
    main()
