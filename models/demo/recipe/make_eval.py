"""Render the OoD evaluation set in the SegmentMeIfYouCan layout.

    /usr/bin/python3 make_eval.py --out ../eval

eval/images/<stem>.jpg        RGB scene, 256x512, JPEG quality 90
eval/labels_masks/<stem>.png  uint8: 0 in-distribution, 1 OoD, 255 void
                              (void = 2-pixel band just outside every OoD object)

Scene i uses np.random.default_rng([3, i]) and 1-3 OoD objects (kinds never
rendered for training: animals, crates, cones, lost cargo, polygons, debris).
"""
import argparse
import os

import cv2
import numpy as np

import scenes

EVAL_SPLIT = 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "eval"))
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "labels_masks"), exist_ok=True)
    sizes = []
    for i in range(args.n):
        rng = np.random.default_rng([EVAL_SPLIT, i])
        n_ood = int(rng.integers(1, 4))
        img, _, ood = scenes.render_scene(rng, n_ood=n_ood)
        lab = scenes.void_band(ood, 2)
        stem = f"demo_{i:03d}"
        cv2.imwrite(os.path.join(args.out, "images", stem + ".jpg"),
                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(os.path.join(args.out, "labels_masks", stem + ".png"), lab)
        ncomp, comp = cv2.connectedComponents(ood)
        sizes += [int((comp == k).sum()) for k in range(1, ncomp)]
    sizes = np.array(sizes)
    print(f"{args.n} scenes, {len(sizes)} OoD components; pixels: median {np.median(sizes):.0f}, "
          f"min {sizes.min()}, max {sizes.max()}, >500 px: {np.mean(sizes > 500) * 100:.0f}%, "
          f"0.3-4% of image: {np.mean((sizes >= 0.003 * 131072) & (sizes <= 0.04 * 131072)) * 100:.0f}%")


if __name__ == "__main__":
    main()
