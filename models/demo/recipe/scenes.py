"""Procedural street-like scenes for the pgn-ood demo model.

Every scene is rendered from a numpy Generator, so a given seed always gives the
same images.  Classes (index order): 0 road, 1 sidewalk, 2 building,
3 vegetation, 4 sky, 5 car, 6 person.

``render_scene(rng, n_ood=0)`` returns
    image  uint8 [H, W, 3] RGB
    sem    uint8 [H, W]  class index, 255 under OoD objects
    ood    uint8 [H, W]  1 on OoD object pixels, else 0

OoD objects (animals with fur, saturated checkered / striped crates, cones in
unusual colours, lost cargo, irregular polygons with unusual textures, debris)
are only ever rendered when n_ood > 0; training never asks for them.
"""
import math

import cv2
import numpy as np

H, W = 256, 512
CLASSES = ["road", "sidewalk", "building", "vegetation", "sky", "car", "person"]
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON = range(7)


# --------------------------------------------------------------------------- noise
def noise(rng, h, w, cell, aniso=1.0):
    """Smooth value noise, roughly N(0,1), features of about `cell` pixels.
    aniso > 1 stretches features horizontally."""
    gh = max(2, int(math.ceil(h / cell)) + 1)
    gw = max(2, int(math.ceil(w / (cell * aniso))) + 1)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(rng, h, w, cells=(32, 8, 2), weights=(1.0, 0.5, 0.25), aniso=1.0):
    out = np.zeros((h, w), np.float32)
    for c, wt in zip(cells, weights):
        out += wt * noise(rng, h, w, c, aniso)
    return out


def jitter_color(rng, c, amount=18):
    return np.clip(np.asarray(c, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def paint(img, lab, mask, tex, cls):
    img[mask] = tex[mask]
    lab[mask] = cls


def solid(c, shape):
    return np.broadcast_to(np.asarray(c, np.float32), shape + (3,))


def window(img, lab, yy, xx, y0, y1, x0, x1):
    """Views of the arrays restricted to a bounding box (None if empty)."""
    y0, y1 = max(0, int(math.floor(y0))), min(H, int(math.ceil(y1)) + 1)
    x0, x1 = max(0, int(math.floor(x0))), min(W, int(math.ceil(x1)) + 1)
    if y1 <= y0 or x1 <= x0:
        return None
    sl = (slice(y0, y1), slice(x0, x1))
    return img[sl], lab[sl], yy[sl], xx[sl]


# --------------------------------------------------------------------------- scene parts
def _grids(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def sky_layer(rng, img, lab, yy):
    top = jitter_color(rng, rng.choice([[70, 120, 200], [120, 160, 215], [150, 160, 175], [200, 170, 150]]), 20)
    bot = jitter_color(rng, [205, 215, 230], 20)
    t = (yy / H)[..., None]
    sky = top * (1 - t) + bot * t
    clouds = fbm(rng, *yy.shape, (48, 16), (1.0, 0.4), aniso=2.0)
    cov = rng.uniform(-0.6, 1.0)
    a = np.clip((clouds - cov) * 0.8, 0, 1)[..., None] * rng.uniform(0.4, 1.0)
    sky = sky * (1 - a) + jitter_color(rng, [235, 235, 240], 15) * a
    paint(img, lab, np.ones((H, W), bool), sky, SKY)


def building_texture(rng, x0, x1, ytop, yy, xx):
    palette = [[150, 150, 150], [185, 170, 140], [150, 85, 65], [200, 195, 185],
               [110, 110, 120], [170, 130, 100], [215, 205, 170], [95, 90, 85]]
    base = jitter_color(rng, palette[rng.integers(len(palette))], 20)
    tex = base + (fbm(rng, *yy.shape, (24, 6, 1), (6, 4, 5)))[..., None]
    if rng.random() < 0.4:  # brick / panel stripes
        per = rng.integers(4, 9)
        tex = tex - (((yy - ytop) % per) < 1)[..., None] * rng.uniform(10, 30)
    sx, sy = rng.integers(14, 34), rng.integers(16, 36)
    ww, wh = sx * rng.uniform(0.35, 0.7), sy * rng.uniform(0.35, 0.65)
    ox, oy = rng.uniform(3, 10), rng.uniform(4, 12)
    win = (((xx - x0 - ox) % sx) < ww) & (((yy - ytop - oy) % sy) < wh)
    win &= (xx >= x0 + 2) & (xx < x1 - 2)
    wcol = jitter_color(rng, rng.choice([[60, 75, 95], [40, 45, 55], [120, 140, 160], [200, 190, 120]]), 15)
    refl = (20 * noise(rng, *yy.shape, 20))[..., None]
    tex = np.where(win[..., None], wcol + refl, tex)
    return tex


def tree(rng, img, lab, cx, cy_base, size, yy, xx):
    """Trunk plus a crown of overlapping discs with leaf-like noise (all vegetation)."""
    trunk_h = size * rng.uniform(0.5, 0.9)
    wnd = window(img, lab, yy, xx, cy_base - trunk_h - 1.4 * size, cy_base + 1, cx - 1.25 * size, cx + 1.25 * size)
    if wnd is None:
        return
    img, lab, yy, xx = wnd
    tw = max(2, size * 0.08)
    m = (np.abs(xx - cx) < tw) & (yy <= cy_base) & (yy > cy_base - trunk_h)
    tex = jitter_color(rng, [90, 70, 50], 15) + 8 * noise(rng, *yy.shape, 3)[..., None]
    paint(img, lab, m, tex, VEGETATION)
    crown = np.zeros(yy.shape, bool)
    ccy = cy_base - trunk_h
    for _ in range(rng.integers(3, 7)):
        r = size * rng.uniform(0.3, 0.6)
        dx = np.clip(rng.normal(0, size * 0.3), -0.6 * size, 0.6 * size)
        dy = np.clip(rng.normal(-size * 0.15, size * 0.2), -0.75 * size, 0.4 * size)
        crown |= (xx - cx - dx) ** 2 + (yy - ccy - dy) ** 2 < r * r
    paint(img, lab, crown, leaf_texture(rng, yy), VEGETATION)


def leaf_texture(rng, yy):
    g = jitter_color(rng, rng.choice([[60, 110, 45], [90, 130, 50], [40, 80, 40], [110, 125, 60]]), 15)
    n = fbm(rng, *yy.shape, (12, 3, 1), (1.0, 0.8, 0.6))
    spots = (n < -0.6)[..., None]
    tex = g * (1 + 0.22 * n[..., None])
    tex = np.where(spots, tex * 0.55, tex)
    return tex


def car(rng, img, lab, cx, yb, scale, yy, xx, shadows):
    w = scale * rng.uniform(0.45, 0.75)
    h = w * rng.uniform(0.55, 0.85)
    x0, x1 = cx - w / 2, cx + w / 2
    yt = yb - h
    body_top = yb - h * rng.uniform(0.5, 0.62)
    wnd = window(img, lab, yy, xx, yt - 2, yb + 2, x0 - 2, x1 + 2)
    if wnd is None:
        return
    img, lab, yy, xx = wnd
    col = jitter_color(rng, rng.choice([[230, 230, 230], [30, 30, 35], [160, 165, 170], [170, 30, 30],
                                        [30, 60, 140], [30, 80, 50], [210, 180, 40], [90, 90, 95]]), 15)
    shadows.append((cx, yb, w * 0.6, h * 0.08))
    body = (xx >= x0) & (xx <= x1) & (yy >= body_top) & (yy <= yb - h * 0.08)
    inset = w * rng.uniform(0.1, 0.2)
    t = np.clip((yy - yt) / max(1.0, body_top - yt), 0, 1)  # 0 at roof, 1 at body top
    half = (w / 2 - inset) + inset * t
    cabin = (yy >= yt) & (yy < body_top) & (np.abs(xx - cx) <= half)
    wheels = np.zeros(yy.shape, bool)
    rw = h * 0.13
    for wx in (x0 + w * 0.18, x1 - w * 0.18):
        wheels |= ((xx - wx) / (rw * 1.1)) ** 2 + ((yy - (yb - rw)) / rw) ** 2 < 1
    shade = (1.0 - 0.35 * np.clip((yy - body_top) / max(1.0, h), 0, 1))[..., None]
    tex = col * shade + 6 * noise(rng, *yy.shape, 4)[..., None]
    paint(img, lab, body, tex, CAR)
    frame = cabin & ~((np.abs(xx - cx) <= half - 2.5) & (yy >= yt + 2.5) & (yy < body_top - 1))
    glass = jitter_color(rng, [50, 60, 75], 15) + 25 * np.clip((yy - yt) / max(1.0, h), 0, 1)[..., None]
    paint(img, lab, cabin, glass, CAR)
    paint(img, lab, frame, solid(col, yy.shape), CAR)
    lights = (yy > body_top + h * 0.08) & (yy < body_top + h * 0.2) & (
        ((xx > x0 + 1) & (xx < x0 + w * 0.14)) | ((xx < x1 - 1) & (xx > x1 - w * 0.14)))
    paint(img, lab, lights & body, solid(rng.choice([[200, 30, 30], [240, 220, 170]]), yy.shape), CAR)
    paint(img, lab, wheels, solid([20, 20, 22], yy.shape), CAR)


def person(rng, img, lab, cx, yb, height, yy, xx, shadows):
    w = height * rng.uniform(0.22, 0.3)
    head_r = height * 0.075
    shirt = jitter_color(rng, rng.choice([[200, 40, 40], [40, 60, 150], [230, 230, 230], [30, 30, 30],
                                         [200, 170, 60], [60, 130, 80], [140, 90, 150]]), 25)
    pants = jitter_color(rng, rng.choice([[40, 40, 60], [30, 30, 30], [120, 100, 80], [70, 90, 130]]), 15)
    skin = jitter_color(rng, rng.choice([[230, 190, 160], [190, 140, 100], [120, 80, 55]]), 12)
    shadows.append((cx, yb, w * 0.7, height * 0.04))
    leg_top = yb - height * 0.47
    wnd = window(img, lab, yy, xx, yb - height - 2, yb + 2, cx - w, cx + w)
    if wnd is None:
        return
    img, lab, yy, xx = wnd
    spread = rng.uniform(0.0, 0.35) * w
    legs = np.zeros(yy.shape, bool)
    for s in (-1, 1):
        lx = cx + s * w * 0.18
        t = np.clip((yy - leg_top) / max(1.0, yb - leg_top), 0, 1)
        legs |= (np.abs(xx - (lx + s * spread * t)) < w * 0.13) & (yy >= leg_top) & (yy <= yb)
    torso_top = yb - height * 0.82
    torso = (((xx - cx) / (w / 2)) ** 2 + ((yy - (torso_top + leg_top) / 2) / ((leg_top - torso_top) / 2 + 1)) ** 4 < 1)
    arms = (np.abs(np.abs(xx - cx) - w * 0.55) < w * 0.1) & (yy > torso_top + 2) & (yy < leg_top + height * 0.08)
    head = (xx - cx) ** 2 + (yy - (torso_top - head_r * 0.9)) ** 2 < head_r ** 2
    n = 8 * noise(rng, *yy.shape, 3)[..., None]
    paint(img, lab, legs, pants + n, PERSON)
    paint(img, lab, arms, shirt * 0.85 + n, PERSON)
    paint(img, lab, torso, shirt + n, PERSON)
    paint(img, lab, head, skin + n, PERSON)
    if rng.random() < 0.5:  # hair
        hair = head & (yy < torso_top - head_r * 0.9)
        paint(img, lab, hair, solid(jitter_color(rng, [50, 35, 25], 20), yy.shape), PERSON)


# --------------------------------------------------------------------------- OoD objects
def _shape_to_area(mask_fn, target_area):
    """mask_fn(s) -> local bool mask for scale s; scale it so that area ~ target."""
    s = 40.0
    m = mask_fn(s)
    a = max(1, m.sum())
    s = s * math.sqrt(target_area / a)
    return s


def ood_object(rng, kind, s):
    """Local (mask, texture) of an OoD object with characteristic size s (pixels)."""
    hs, ws = int(2.2 * s) + 8, int(2.6 * s) + 8
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32)
    cx, cy = ws / 2, hs - 4  # bottom-centre anchor
    if kind == "animal":
        bw, bh = s * rng.uniform(0.5, 0.7), s * rng.uniform(0.25, 0.35)
        leg = s * rng.uniform(0.25, 0.45)
        byc = cy - leg - bh * 0.6
        m = ((xx - cx) / bw) ** 2 + ((yy - byc) / bh) ** 2 < 1
        d = rng.choice([-1, 1])
        hx, hy = cx + d * bw * 1.05, byc - bh * rng.uniform(0.4, 1.0)
        hr = s * rng.uniform(0.15, 0.22)
        m |= ((xx - hx) / (hr * 1.2)) ** 2 + ((yy - hy) / hr) ** 2 < 1
        m |= (np.abs(xx - (hx - d * hr * 0.4)) < hr * 0.25) & (yy < hy - hr * 0.6) & (yy > hy - hr * 1.5)  # ear
        m |= (np.abs(xx - (hx - d * hr * 0.9)) < hr * 0.45) & (np.abs(yy - (hy + byc) / 2) < hr * 0.6)  # neck
        for lx in (cx - bw * 0.7, cx - bw * 0.45, cx + bw * 0.45, cx + bw * 0.7):
            m |= (np.abs(xx - lx) < s * 0.05) & (yy > byc) & (yy <= cy)
        tx = cx - d * bw
        m |= (np.abs(yy - (byc - bh * 0.3 - (xx - tx) * 0.0)) < s * 0.035) & (np.abs(xx - (tx - d * s * 0.12)) < s * 0.13)
        fur_cols = [[120, 80, 45], [200, 120, 50], [60, 50, 45], [215, 205, 190], [150, 140, 130], [170, 140, 90]]
        c1 = jitter_color(rng, fur_cols[rng.integers(len(fur_cols))], 20)
        c2 = jitter_color(rng, fur_cols[rng.integers(len(fur_cols))], 20)
        patches = (fbm(rng, hs, ws, (max(4, s / 4), max(2, s / 12)), (1, .5)) > rng.uniform(0.0, 1.5))[..., None]
        hair = noise(rng, hs, ws, 1.5, aniso=rng.uniform(2, 4)) + 0.5 * noise(rng, hs, ws, 1.0)
        tex = np.where(patches, c2, c1) * (1 + 0.18 * hair[..., None])
        tex *= (1 - 0.3 * np.clip((yy - byc) / (s * 0.6), 0, 1))[..., None]
    elif kind == "crate":
        fw, fh = s * rng.uniform(0.7, 1.0), s * rng.uniform(0.5, 0.8)
        dep = s * rng.uniform(0.15, 0.3)
        x0, x1, y1 = cx - fw / 2, cx + fw / 2, cy
        y0 = y1 - fh
        front = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        top = (yy < y0) & (yy >= y0 - dep) & (xx >= x0 + (y0 - yy)) & (xx <= x1 + (y0 - yy))
        side = (xx > x1) & (xx <= x1 + dep) & (yy <= y1 - (xx - x1)) & (yy >= y0 - (xx - x1))
        m = front | top | side
        sat = [[255, 0, 200], [255, 230, 0], [0, 230, 255], [255, 120, 0], [120, 0, 255], [0, 255, 80], [255, 255, 255], [10, 10, 10]]
        i, j = rng.choice(len(sat), 2, replace=False)
        ca, cb = np.array(sat[i], np.float32), np.array(sat[j], np.float32)
        p = max(3.0, s * rng.uniform(0.08, 0.2))
        if rng.random() < 0.5:
            pat = ((np.floor(xx / p) + np.floor(yy / p)) % 2 == 0)
        else:
            ang = rng.uniform(0, np.pi)
            pat = ((xx * np.cos(ang) + yy * np.sin(ang)) / p % 2) < 1
        tex = np.where(pat[..., None], ca, cb)
        tex = np.where(top[..., None], tex * 1.1, np.where(side[..., None], tex * 0.7, tex))
    elif kind == "cone":
        ch = s * rng.uniform(1.3, 1.8)
        bw = ch * rng.uniform(0.35, 0.5)
        y0 = cy - ch
        t = np.clip((yy - y0) / ch, 0, 1)
        m = (yy >= y0) & (yy <= cy - ch * 0.06) & (np.abs(xx - cx) <= bw * (0.12 + 0.38 * t))
        m |= (yy > cy - ch * 0.08) & (yy <= cy) & (np.abs(xx - cx) <= bw * 0.62)
        cols = [[160, 0, 255], [0, 255, 120], [0, 220, 255], [255, 0, 130], [40, 40, 255], [200, 255, 0]]
        c1 = jitter_color(rng, cols[rng.integers(len(cols))], 15)
        band = ((t * rng.integers(3, 7)) % 1) < 0.35
        tex = np.where(band[..., None], np.array([240, 240, 240], np.float32), c1)
        tex = tex * (1 - 0.35 * (np.abs(xx - cx) / (bw * 0.6 + 1)))[..., None]
    elif kind == "cargo":
        m = np.zeros((hs, ws), bool)
        tex = np.zeros((hs, ws, 3), np.float32)
        for _ in range(rng.integers(3, 7)):
            sub = rng.integers(4)
            px, py = cx + rng.normal(0, s * 0.35), cy - rng.uniform(0.1, 0.45) * s
            ang = rng.uniform(0, np.pi)
            a, b = s * rng.uniform(0.15, 0.4), s * rng.uniform(0.08, 0.25)
            u = (xx - px) * np.cos(ang) + (yy - py) * np.sin(ang)
            v = -(xx - px) * np.sin(ang) + (yy - py) * np.cos(ang)
            if sub == 0:  # wooden plank / box
                mm = (np.abs(u) < a) & (np.abs(v) < b)
                t = jitter_color(rng, [185, 140, 85], 20) * (1 + 0.15 * np.sin(v[..., None] * 1.3 + 2 * noise(rng, hs, ws, 6)[..., None]))
            elif sub == 1:  # cardboard
                mm = (np.abs(u) < a) & (np.abs(v) < b * 1.5)
                t = jitter_color(rng, [165, 125, 80], 10) + 10 * noise(rng, hs, ws, 2)[..., None]
                t = np.where((np.abs(v) < b * 0.15)[..., None], [200, 190, 160], t)
            elif sub == 2:  # tarp / bag
                mm = (u / a) ** 2 + (v / b) ** 2 < 1
                t = jitter_color(rng, rng.choice([[30, 80, 200], [230, 230, 230], [20, 20, 20], [40, 150, 60]]), 20)
                t = t * (1 + 0.25 * noise(rng, hs, ws, max(2, s / 10))[..., None])
            else:  # tire
                r = a
                d2 = (xx - px) ** 2 + (yy - py) ** 2
                mm = (d2 < r * r)
                t = np.where((d2 < (0.5 * r) ** 2)[..., None], [120, 120, 125], [25, 25, 25]) + 4 * noise(rng, hs, ws, 2)[..., None]
            tex = np.where(mm[..., None], t, tex)
            m |= mm
    elif kind == "polygon":
        n = rng.integers(5, 11)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = s * rng.uniform(0.35, 0.75, n)
        pts = np.stack([cx + rad * np.cos(ang), (cy - s * 0.75) + 0.9 * rad * np.sin(ang)], 1)
        m8 = np.zeros((hs, ws), np.uint8)
        cv2.fillPoly(m8, [np.round(pts).astype(np.int32)], 1)
        m = m8.astype(bool)
        style = rng.integers(4)
        if style == 0:  # polka dots
            p = max(4.0, s * rng.uniform(0.1, 0.2))
            dots = ((xx % p) - p / 2) ** 2 + ((yy % p) - p / 2) ** 2 < (p * 0.3) ** 2
            tex = np.where(dots[..., None], jitter_color(rng, [255, 255, 0], 40), jitter_color(rng, [200, 0, 120], 50))
        elif style == 1:  # rainbow
            hue = ((xx + yy) / (s * rng.uniform(0.3, 1.0)) * 30).astype(np.int32) % 180
            hsv = np.stack([hue, np.full_like(hue, 230), np.full_like(hue, 240)], -1).astype(np.uint8)
            tex = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
        elif style == 2:  # fine stripes
            p = rng.uniform(2.5, 5)
            a = rng.uniform(0, np.pi)
            st = np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / p) > 0
            tex = np.where(st[..., None], jitter_color(rng, [20, 20, 20], 20), jitter_color(rng, [250, 200, 0], 40))
        else:  # camouflage
            n1 = fbm(rng, hs, ws, (max(3, s / 5), 2), (1, .3))
            cols = np.array([jitter_color(rng, c, 30) for c in ([90, 100, 50], [150, 130, 90], [50, 50, 40], [200, 60, 160])])
            tex = cols[np.digitize(n1, [-0.6, 0.0, 0.6])]
    else:  # debris: irregular rocky blob with granular texture
        r = s * 0.5
        blob = ((xx - cx) / (r * 1.3)) ** 2 + ((yy - (cy - r * 0.7)) / (r * 0.7)) ** 2 + 0.5 * noise(rng, hs, ws, max(3, s / 4))
        m = (blob < 1) & (yy <= cy)
        base = jitter_color(rng, rng.choice([[130, 120, 105], [95, 85, 75], [160, 150, 140], [110, 70, 50]]), 15)
        tex = base * (1 + 0.2 * fbm(rng, hs, ws, (max(2, s / 6), 1.5, 1), (0.6, 0.6, 0.4))[..., None])
        tex *= (1 - 0.3 * np.clip((yy - (cy - r)) / r, 0, 1))[..., None]
    return m, tex.astype(np.float32)


OOD_KINDS = ["animal", "crate", "cone", "cargo", "polygon", "debris"]


def sample_ood(rng, yh, vx, kr, ks):
    """Draw kind, size and ground anchor of one OoD object (all randomness here)."""
    kind = OOD_KINDS[rng.integers(len(OOD_KINDS))]
    lo, hi = math.log(0.003), math.log(0.04)
    t = rng.uniform(0, 1)
    frac = math.exp(lo + t * (hi - lo))  # log-uniform share of the image, 0.3 % .. 4 %
    seed = int(rng.integers(1 << 31))
    # bottom anchor on the road (70 %) or the sidewalk; bigger objects stand nearer
    on_road = rng.random() < 0.7
    for _ in range(20):
        yb = yh + (H + 2 - yh) * rng.uniform(0.2 + 0.45 * t, 1.0)
        if on_road:
            xb = vx + rng.uniform(-0.85, 0.85) * kr * (yb - yh)
        else:
            xb = vx + rng.choice([-1, 1]) * rng.uniform(kr * 1.05, ks * 0.95) * (yb - yh)
        if 0 <= xb < W:
            break
    return kind, frac, seed, yb, xb


def place_ood(spec, img, sem, shadows):
    kind, frac, seed, yb, xb = spec
    target = frac * H * W
    m40, _ = ood_object(np.random.default_rng(seed), kind, 40.0)
    s = 40.0 * math.sqrt(target / max(1, m40.sum()))
    s = float(np.clip(s, 8, 160))
    m, tex = ood_object(np.random.default_rng(seed), kind, s)
    hs, ws = m.shape
    x0, y0 = int(round(xb - ws / 2)), int(round(yb - (hs - 4)))
    sy0, sx0 = max(0, -y0), max(0, -x0)
    dy0, dx0 = max(0, y0), max(0, x0)
    dy1, dx1 = min(H, y0 + hs), min(W, x0 + ws)
    if dy1 <= dy0 or dx1 <= dx0:
        return
    mm = m[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
    tt = tex[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
    # soft ground shadow under the object (the ground keeps its class)
    shadows.append((xb, yb, ws * 0.35, max(2.0, hs * 0.04)))
    reg = img[dy0:dy1, dx0:dx1]
    reg[mm] = tt[mm]
    sem[dy0:dy1, dx0:dx1][mm] = 255  # later (nearer) cars / persons may overwrite


# --------------------------------------------------------------------------- scene
def render_scene(rng, n_ood=0):
    yy, xx = _grids(H, W)
    img = np.zeros((H, W, 3), np.float32)
    lab = np.zeros((H, W), np.uint8)
    shadows = []

    yh = rng.uniform(0.36, 0.52) * H
    vx = rng.uniform(0.3, 0.7) * W
    kr = rng.uniform(0.35, 0.7) * W / (H - yh)
    ks = kr * rng.uniform(1.3, 1.8)

    sky_layer(rng, img, lab, yy)

    # buildings: columns with random roof lines (lower near the vanishing point)
    x = -rng.uniform(0, 30)
    while x < W:
        bw = rng.uniform(40, 140)
        x0, x1 = x, x + bw
        dist = abs((x0 + x1) / 2 - vx) / W
        top = yh - rng.uniform(0.15, 1.0) * yh * (0.35 + 1.3 * dist)
        if rng.random() < 0.12:  # gap: sky visible
            x = x1 + rng.uniform(0, 10)
            continue
        wnd = window(img, lab, yy, xx, top, H, x0, x1)
        if wnd is not None:
            wi, wl, wy, wx = wnd
            m = (wx >= x0) & (wx < x1) & (wy >= top)
            paint(wi, wl, m, building_texture(rng, x0, x1, top, wy, wx), BUILDING)
        x = x1 + (0 if rng.random() < 0.7 else rng.uniform(0, 15))

    # ground: road / sidewalk in perspective, the rest stays building / becomes vegetation
    depth = np.maximum(yy - yh, 1e-3)
    below = yy > yh
    u = (xx - vx) / (kr * depth)  # lateral road coordinate (|u|<1 = road)
    road = below & (np.abs(u) < 1)
    side = below & (np.abs(u) >= 1) & (np.abs(u) < ks / kr)
    # verge: hedge / grass between sidewalk and facades on some sides
    for sgn in (-1, 1):
        if rng.random() < 0.45:
            lim = ks / kr * rng.uniform(1.1, 1.6)
            verge = below & (sgn * u >= ks / kr) & (sgn * u < lim)
            paint(img, lab, verge, leaf_texture(rng, yy), VEGETATION)
            hedge_h = rng.uniform(4, 20)
            edge = below & (sgn * u >= lim) & (yy - yh < (lim * kr * depth) * 0 + hedge_h + 0.25 * depth)
            if rng.random() < 0.5:
                paint(img, lab, edge & (sgn * u < lim * 1.4), leaf_texture(rng, yy), VEGETATION)

    z = 1.0 / depth
    asphalt = jitter_color(rng, rng.choice([[85, 85, 90], [110, 108, 105], [65, 65, 70], [125, 120, 125]]), 12)
    rtex = asphalt + (fbm(rng, *yy.shape, (40, 6, 1), (8, 4, 9)))[..., None]
    # lane markings in road coordinates: centre dashes, optional edge lines
    lw = rng.uniform(0.02, 0.035)
    dash = ((z * rng.uniform(250, 500)) % 1.0) < rng.uniform(0.35, 0.6)
    lanes = [0.0] if rng.random() < 0.7 else [-0.33, 0.33]
    mark = np.zeros((H, W), bool)
    for l0 in lanes:
        mark |= (np.abs(u - l0) < lw) & dash
    if rng.random() < 0.7:
        mark |= np.abs(np.abs(u) - 0.92) < lw * 0.8
    mcol = jitter_color(rng, rng.choice([[230, 230, 225], [230, 200, 60]]), 10)
    rtex = np.where(mark[..., None], mcol, rtex)
    paint(img, lab, road, rtex, ROAD)

    scol = jitter_color(rng, rng.choice([[165, 160, 155], [185, 175, 160], [160, 110, 100], [135, 135, 140]]), 12)
    stex = scol + (fbm(rng, *yy.shape, (30, 4, 1), (6, 4, 6)))[..., None]
    su = (np.abs(u) - 1) / (ks / kr - 1)
    tile = (((su * rng.integers(2, 6)) % 1) < 0.06) | (((z * rng.uniform(150, 400)) % 1) < 0.08)
    stex = np.where(tile[..., None], stex * 0.8, stex)
    curb = side & (su < 0.07)
    stex = np.where(curb[..., None], stex * 1.12, stex)
    paint(img, lab, side, stex, SIDEWALK)

    # trees along the sidewalk edge
    for _ in range(rng.integers(0, 6)):
        sgn = rng.choice([-1, 1])
        yb = rng.uniform(yh + 5, H + 40)
        cx = vx + sgn * ks * (yb - yh) * rng.uniform(0.95, 1.2)
        size = (yb - yh) * rng.uniform(0.8, 1.5) + 10
        tree(rng, img, lab, cx, yb, size, yy, xx)

    # cars (on road) and persons (mostly sidewalk), far to near
    objs = []
    for _ in range(rng.integers(0, 6)):
        yb = rng.uniform(yh + 8, H + 25)
        objs.append(("car", yb, vx + rng.uniform(-0.8, 0.8) * kr * (yb - yh)))
    for _ in range(rng.integers(0, 6)):
        yb = rng.uniform(yh + 8, H + 5)
        if rng.random() < 0.75:
            xb = vx + rng.choice([-1, 1]) * rng.uniform(kr, ks) * (yb - yh)
        else:
            xb = vx + rng.uniform(-0.9, 0.9) * kr * (yb - yh)
        objs.append(("person", yb, xb))
    for _ in range(n_ood):  # OoD objects take part in the depth ordering
        spec = sample_ood(rng, yh, vx, kr, ks)
        objs.append(("ood", spec[3], spec))
    objs.sort(key=lambda o: o[1])
    for kind, yb, xb in objs:
        if kind == "ood":
            place_ood(xb, img, lab, shadows)
            continue
        scale = kr * (yb - yh)  # road half-width at that depth
        if kind == "car":
            car(rng, img, lab, xb, yb, scale * rng.uniform(0.8, 1.2), yy, xx, shadows)
        else:
            person(rng, img, lab, xb, yb, scale * rng.uniform(0.45, 0.7) + 6, yy, xx, shadows)

    ood = (lab == 255).astype(np.uint8)

    # ---------------------------------------------------------------- lighting
    light = np.ones((H, W), np.float32)
    for sx, sy, sw, sh in shadows:  # contact shadows (ground keeps its label)
        wnd = window(light, lab, yy, xx, sy - sh, sy + sh, sx - sw, sx + sw)
        if wnd is None:
            continue
        wlight, wl, wy, wx = wnd
        e = ((wx - sx) / max(sw, 1)) ** 2 + ((wy - sy) / max(sh, 1)) ** 2 < 1
        wo = ood[wy[0, 0].astype(int):wy[-1, 0].astype(int) + 1, wx[0, 0].astype(int):wx[-1, 0].astype(int) + 1]
        wlight[e & (wl != CAR) & (wl != PERSON) & (wo == 0)] *= 0.6
    if rng.random() < 0.6:  # shadow band cast across the scene
        a = rng.uniform(-0.8, 0.8)
        c = rng.uniform(0, W)
        wband = rng.uniform(30, 150)
        d = (xx - c) * math.cos(a) + (yy - yh) * math.sin(a)
        band = (np.abs(d) < wband).astype(np.float32)
        band = cv2.GaussianBlur(band, (0, 0), rng.uniform(1, 6))
        light *= 1 - rng.uniform(0.25, 0.55) * band * (yy > yh - 40)
    img = img * light[..., None]
    temp = rng.uniform(-0.12, 0.12)
    img = img * np.array([1 + temp, 1.0, 1 - temp], np.float32)
    contrast = rng.uniform(0.7, 1.25)
    bright = rng.uniform(-35, 30)
    img = (img - 128) * contrast + 128 + bright
    img += rng.normal(0, rng.uniform(1, 5), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.0))
    return img, lab, ood


def void_band(ood, width=2):
    """Labels in SegmentMeIfYouCan convention: 0 in-dist, 1 OoD, 255 void
    (a `width`-pixel band just outside every OoD object's boundary)."""
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * width + 1, 2 * width + 1))
    dil = cv2.dilate(ood, k)
    out = ood.copy()
    out[(dil > 0) & (ood == 0)] = 255
    return out


PALETTE = np.array([[128, 64, 128], [244, 35, 232], [70, 70, 70], [107, 142, 35],
                    [70, 130, 180], [0, 0, 142], [220, 20, 60]], np.uint8)


if __name__ == "__main__":  # quick preview: python3 scenes.py out.png
    import sys
    import time
    rng = np.random.default_rng(0)
    t = time.time()
    rows = []
    for i in range(6):
        im, lab, o = render_scene(rng, n_ood=2 if i % 2 else 0)
        col = PALETTE[np.minimum(lab, 6)]
        col[lab == 255] = [255, 255, 255]
        rows.append(np.concatenate([im, col], 1))
    print("%.1f ms/scene" % ((time.time() - t) / 6 * 1000))
    cv2.imwrite(sys.argv[1] if len(sys.argv) > 1 else "/tmp/preview.png",
                cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
