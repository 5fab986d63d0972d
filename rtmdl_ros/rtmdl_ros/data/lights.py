"""Synthetic road scenes from a small car's camera, with traffic lights.

Each scene has a sky, buildings and trees on the sides, a road with lane marks
running to the horizon, and 0-4 traffic lights on poles at varied distances:
a dark housing with three lamps, one lit (red, yellow or green, with glow) or
none ('off'). Distractors that a detector must not take for lights: tail
lights, lit windows, round signs. The renderer draws at any resolution; the
detector sees scenes at INPUT_W x INPUT_H. Boxes are [x0, y0, x1, y1] pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from .cache import cached_split
from .render import finish

STATES = ('red', 'yellow', 'green', 'off')
INPUT_W, INPUT_H = 160, 120
MAX_LIGHTS = 4
SPLITS = {'train': (3000, 0), 'val': (300, 1), 'test': (600, 2)}

_LIT = {'red': (40, 40, 255), 'yellow': (30, 200, 255), 'green': (140, 255, 60)}
_DIM = {'red': (30, 30, 70), 'yellow': (25, 60, 70), 'green': (50, 70, 30)}


def _scene(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, int]:
    img = np.zeros((h, w, 3), np.float32)
    horizon = int(h * rng.uniform(0.38, 0.55))
    sky_top, sky_low = rng.uniform([150, 90, 40], [255, 200, 160]), rng.uniform([170, 150, 120], [255, 240, 230])
    ramp = np.linspace(0, 1, horizon)[:, None, None]
    img[:horizon] = sky_top * (1 - ramp) + sky_low * ramp
    img[horizon:] = rng.uniform(70, 130, 3)                                  # verge / pavement
    for _ in range(int(rng.integers(3, 9))):                                 # buildings and trees
        x0 = int(rng.uniform(-0.1, 1.0) * w)
        bw, bh = int(rng.uniform(0.08, 0.3) * w), int(rng.uniform(0.1, 0.45) * h)
        colour = tuple(float(c) for c in rng.uniform(30, 200, 3))
        if rng.random() < 0.6:
            cv2.rectangle(img, (x0, horizon - bh), (x0 + bw, horizon + 2), colour, -1)
            for _ in range(int(rng.integers(0, 6))):                         # windows, some lit
                wx, wy = x0 + int(rng.uniform(0, bw)), horizon - int(rng.uniform(0.1, 0.9) * bh)
                lit = rng.random() < 0.3
                win = (60, 200, 255) if lit else tuple(float(c) for c in rng.uniform(20, 90, 3))
                s = max(1, w // 120)
                cv2.rectangle(img, (wx, wy), (wx + 2 * s, wy + 2 * s), win, -1)
        else:
            cv2.ellipse(img, (x0, horizon - bh // 2), (bw // 2, bh // 2), 0, 0, 360,
                        (float(rng.uniform(20, 70)), float(rng.uniform(70, 140)), float(rng.uniform(20, 70))), -1)
    # Road: a trapezoid to the vanishing point, with dashed lane marks.
    vx = w * rng.uniform(0.35, 0.65)
    grey = float(rng.uniform(50, 110))
    road = np.array([(vx - w * 0.03, horizon), (vx + w * 0.03, horizon), (w * 1.1, h), (-w * 0.1, h)], np.int32)
    cv2.fillPoly(img, [road], (grey, grey, grey * 1.02))
    for k in range(6):
        t0, t1 = (k + 0.2) / 6, (k + 0.6) / 6
        p0 = (int(vx + (w / 2 - vx) * t0 ** 2), int(horizon + (h - horizon) * t0 ** 2))
        p1 = (int(vx + (w / 2 - vx) * t1 ** 2), int(horizon + (h - horizon) * t1 ** 2))
        cv2.line(img, p0, p1, (220, 220, 220), max(1, int(w / 160 * (1 + 3 * t1))))
    for _ in range(int(rng.integers(0, 3))):                                 # cars ahead with tail lights
        cx, cy = int(rng.uniform(0.25, 0.75) * w), int(horizon + rng.uniform(0.05, 0.4) * (h - horizon))
        cw = int(w * rng.uniform(0.05, 0.15))
        ch = int(cw * 0.6)
        cv2.rectangle(img, (cx - cw // 2, cy - ch), (cx + cw // 2, cy), tuple(float(c) for c in rng.uniform(20, 200, 3)), -1)
        r = max(1, cw // 10)
        for sx in (cx - cw // 2 + r, cx + cw // 2 - r):
            cv2.circle(img, (sx, cy - ch // 2), r, (40, 40, 230), -1, cv2.LINE_AA)
    if rng.random() < 0.4:                                                   # a round sign on a pole
        sx, sy = int(rng.uniform(0.05, 0.95) * w), int(horizon - rng.uniform(0.05, 0.3) * h)
        r = int(w * rng.uniform(0.01, 0.03)) + 1
        cv2.line(img, (sx, sy), (sx, horizon + int(0.1 * h)), (90, 90, 90), max(1, r // 3))
        cv2.circle(img, (sx, sy), r, (30, 30, 200) if rng.random() < 0.5 else (60, 160, 60), -1, cv2.LINE_AA)
    return img, horizon


def _light(img: np.ndarray, rng: np.random.Generator, x0: float, y0: float, lw: float, state: str,
           horizon: int) -> list[float]:
    """Draw one light with its housing's top-left at (x0, y0); returns its box."""
    lh = lw * rng.uniform(2.4, 2.9)
    h = img.shape[0]
    pole_x = int(x0 + lw / 2)
    cv2.line(img, (pole_x, int(y0 + lh)), (pole_x, int(horizon + 0.25 * h)), (60, 60, 60), max(1, int(lw / 5)))
    housing = float(rng.uniform(15, 55))
    cv2.rectangle(img, (int(x0), int(y0)), (int(x0 + lw), int(y0 + lh)), (housing, housing, housing), -1)
    r = lw * 0.33
    for k, colour in enumerate(('red', 'yellow', 'green')):
        cx, cy = x0 + lw / 2, y0 + lh * (k + 0.5) / 3
        centre = (int(round(cx * 8)), int(round(cy * 8)))                 # sub-pixel drawing (shift=3)
        if colour == state:
            glow = np.zeros_like(img)
            cv2.circle(glow, centre, int(r * 2.2 * 8), _LIT[colour], -1, cv2.LINE_AA, 3)
            img += cv2.GaussianBlur(glow, (0, 0), max(0.8, r)) * rng.uniform(0.25, 0.6)
            cv2.circle(img, centre, int(r * 8), _LIT[colour], -1, cv2.LINE_AA, 3)
            cv2.circle(img, centre, int(r * 0.45 * 8), (235, 245, 255), -1, cv2.LINE_AA, 3)
        else:
            cv2.circle(img, centre, int(r * 8), _DIM[colour], -1, cv2.LINE_AA, 3)
    return [x0, y0, x0 + lw, y0 + lh]


def render(rng: np.random.Generator, w: int = INPUT_W, h: int = INPUT_H,
           n_lights: int | None = None, states: list[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bgr8 scene and its lights: (image, boxes N x 4, states N)."""
    img, horizon = _scene(rng, w, h)
    n = int(rng.choice([0, 1, 1, 2, 2, 3, 4])) if n_lights is None else n_lights
    boxes, labels, taken = [], [], []
    for i in range(n):
        state = int(rng.integers(0, 4)) if states is None else states[i]
        for _ in range(20):                                               # place without overlap
            lw = w * rng.uniform(0.022, 0.075)                            # near lights are larger
            lh_max = lw * 2.9
            x0 = rng.uniform(0.02 * w, 0.98 * w - lw)
            y0 = rng.uniform(0.04 * h, max(0.05 * h, horizon - lh_max - 0.02 * h))
            box = [x0 - 2, y0 - 2, x0 + lw + 2, y0 + lh_max + 2]
            if all(box[2] < t[0] or box[0] > t[2] or box[3] < t[1] or box[1] > t[3] for t in taken):
                taken.append(box)
                boxes.append(_light(img, rng, x0, y0, lw, STATES[state], horizon))
                labels.append(state)
                break
    img = finish(img, rng, blur_max=0.9, noise_max=6.0)
    return (img, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64))


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    """n scenes at the detector's input size; boxes padded to MAX_LIGHTS (state -1 = none)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, INPUT_H, INPUT_W, 3), np.uint8)
    boxes = np.zeros((n, MAX_LIGHTS, 4), np.float32)
    states = np.full((n, MAX_LIGHTS), -1, np.int64)
    for i in range(n):
        # Rendered at 2x and downsampled: smoother edges, like a camera frame resized.
        img, b, s = render(rng, 2 * INPUT_W, 2 * INPUT_H)
        images[i] = cv2.resize(img, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
        boxes[i, :len(b)] = b / 2.0
        states[i, :len(s)] = s
    return {'images': images, 'boxes': boxes, 'states': states}


def load_split(split: str, seed: int = 0, size: int | None = None) -> dict[str, np.ndarray]:
    return cached_split('lights', SPLITS, split, seed, size, 29, generate)
