"""Synthetic GTSRB-style traffic-sign crops.

Sixteen sign classes drawn from their shapes, colours and glyphs (speed-limit
digits, STOP lettering, arrows, the caution mark), then seen the way a small
car's camera sees them: perspective, rotation, scale and offset in the crop,
partial occlusion, cluttered backgrounds, exposure and colour casts, blur and
noise. Crops are SIZE x SIZE bgr8, like a resized GTSRB region of interest.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .cache import balanced_labels, cached_split
from .render import clutter, composite, finish, perspective_matrix, warp_perspective

SIZE = 32
CLASSES = ('speed_20', 'speed_30', 'speed_50', 'speed_60', 'speed_80', 'speed_100', 'stop', 'yield',
           'no_entry', 'general_caution', 'turn_left', 'turn_right', 'ahead_only', 'keep_right',
           'roundabout', 'priority_road')
SPLITS = {'train': (6000, 0), 'val': (800, 1), 'test': (1600, 2)}   # (size, seed offset)

_CANVAS = 96
RED, BLUE, WHITE, BLACK, YELLOW = (30, 30, 200), (170, 80, 20), (235, 235, 235), (25, 25, 25), (20, 190, 235)


def _ring_sign(img, mask, fill, ring):
    c, r = (_CANVAS // 2, _CANVAS // 2), _CANVAS // 2 - 4
    cv2.circle(mask, c, r, 255, -1, cv2.LINE_AA)
    cv2.circle(img, c, r, ring, -1, cv2.LINE_AA)
    cv2.circle(img, c, int(r * 0.78), fill, -1, cv2.LINE_AA)


def _disc_sign(img, mask, fill):
    c, r = (_CANVAS // 2, _CANVAS // 2), _CANVAS // 2 - 4
    cv2.circle(mask, c, r, 255, -1, cv2.LINE_AA)
    cv2.circle(img, c, r, fill, -1, cv2.LINE_AA)
    cv2.circle(img, c, r, WHITE, 2, cv2.LINE_AA)


# Sign lettering from our own strokes, not cv2.putText: OpenCV 5 replaced the
# Hershey fonts that 4.x draws (and changed them again in 5.1), while lines are
# drawn alike by every release, so the data set does not depend on the version.
def _arc(cx, cy, rx, ry, a0, a1):
    a = np.radians(np.linspace(a0, a1, max(8, int(abs(a1 - a0) / 10))))
    return list(zip(cx + rx * np.cos(a), cy + ry * np.sin(a)))


# Glyphs in a unit box (x right, y down, angles clockwise from +x like cv2.ellipse): lists of strokes.
_GLYPHS = {
    '0': [_arc(.5, .5, .5, .5, 0, 360)],
    '1': [[(.25, .22), (.6, 0), (.6, 1)]],
    '2': [_arc(.5, .28, .46, .28, 180, 400) + [(.02, 1), (1, 1)]],
    '3': [_arc(.5, .26, .44, .26, 200, 450) + _arc(.5, .74, .48, .26, 270, 520)],
    '5': [[(.9, 0), (.18, 0), (.12, .45)] + _arc(.5, .68, .46, .32, 230, 510)],
    '6': [_arc(.5, .7, .45, .3, 0, 360), _arc(.58, .6, .5, .6, 290, 180)],
    '8': [_arc(.5, .25, .38, .25, 0, 360), _arc(.5, .72, .46, .28, 0, 360)],
    'S': [_arc(.5, .26, .45, .26, 330, 90) + _arc(.5, .74, .45, .26, 270, 510)],
    'T': [[(0, 0), (1, 0)], [(.5, 0), (.5, 1)]],
    'O': [_arc(.5, .5, .5, .5, 0, 360)],
    'P': [[(.1, 1), (.1, 0), (.55, 0)] + _arc(.55, .27, .4, .27, 270, 450) + [(.1, .54)]],
}
_SUBPIXEL = 4                                            # cv2 shift: coordinates in 1/16 pixel


def _text(img, text, height, colour, thickness, dy=0):
    """Centred lettering `height` pixels tall, glyphs 0.6 as wide, 0.3 apart."""
    w, gap = 0.6 * height, 0.3 * height
    x = (_CANVAS - (len(text) * w + (len(text) - 1) * gap)) / 2
    y = (_CANVAS - height) / 2 + dy
    for ch in text:
        for stroke in _GLYPHS[ch]:
            pts = np.array([(x + u * w, y + v * height) for u, v in stroke]) * (1 << _SUBPIXEL)
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colour, thickness, cv2.LINE_AA, _SUBPIXEL)
        x += w + gap


def _arrow(img, start, end, thickness=7):
    cv2.arrowedLine(img, start, end, WHITE, thickness, cv2.LINE_AA, tipLength=0.45)


def _polygon(img, mask, points, colour):
    pts = np.array(points, np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)


def draw_sign(cls: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sign face on a canvas: (float image, alpha mask)."""
    img = np.zeros((_CANVAS, _CANVAS, 3), np.uint8)      # OpenCV text and anti-aliasing need 8-bit
    mask = np.zeros((_CANVAS, _CANVAS), np.uint8)
    name = CLASSES[cls]
    m, c = 4, _CANVAS // 2
    if name.startswith('speed_'):
        _ring_sign(img, mask, WHITE, RED)
        digits = name.split('_')[1]
        _text(img, digits, 30 if len(digits) == 2 else 24, BLACK, 4)
    elif name == 'stop':
        pts = [(c + (c - m) * math.cos(math.pi / 8 + k * math.pi / 4), c + (c - m) * math.sin(math.pi / 8 + k * math.pi / 4))
               for k in range(8)]
        _polygon(img, mask, pts, RED)
        _text(img, 'STOP', 17, WHITE, 3)
    elif name == 'yield':
        _polygon(img, mask, [(m, m + 6), (_CANVAS - m, m + 6), (c, _CANVAS - m)], RED)
        cv2.fillPoly(img, [np.array([(m + 17, m + 16), (_CANVAS - m - 17, m + 16), (c, _CANVAS - m - 20)], np.int32)],
                     WHITE, cv2.LINE_AA)
    elif name == 'no_entry':
        _disc_sign(img, mask, RED)
        cv2.rectangle(img, (m + 14, c - 7), (_CANVAS - m - 14, c + 7), WHITE, -1)
    elif name == 'general_caution':
        _polygon(img, mask, [(c, m), (_CANVAS - m, _CANVAS - m - 6), (m, _CANVAS - m - 6)], RED)
        cv2.fillPoly(img, [np.array([(c, m + 17), (_CANVAS - m - 15, _CANVAS - m - 15), (m + 15, _CANVAS - m - 15)],
                                    np.int32)], WHITE, cv2.LINE_AA)
        cv2.line(img, (c, c - 14), (c, c + 12), BLACK, 6, cv2.LINE_AA)
        cv2.circle(img, (c, c + 22), 4, BLACK, -1, cv2.LINE_AA)
    elif name in ('turn_left', 'turn_right', 'ahead_only', 'keep_right'):
        _disc_sign(img, mask, BLUE)
        ends = {'turn_left': ((c + 24, c), (c - 26, c)), 'turn_right': ((c - 24, c), (c + 26, c)),
                'ahead_only': ((c, c + 26), (c, c - 26)), 'keep_right': ((c - 20, c - 20), (c + 18, c + 18))}
        _arrow(img, *ends[name])
    elif name == 'roundabout':
        _disc_sign(img, mask, BLUE)
        for k in range(3):
            a0 = k * 120
            cv2.ellipse(img, (c, c), (22, 22), a0, 20, 95, WHITE, 6, cv2.LINE_AA)
            tip = (int(c + 22 * math.cos(math.radians(a0 + 105))), int(c + 22 * math.sin(math.radians(a0 + 105))))
            cv2.circle(img, tip, 6, WHITE, -1, cv2.LINE_AA)
    elif name == 'priority_road':
        _polygon(img, mask, [(c, m), (_CANVAS - m, c), (c, _CANVAS - m), (m, c)], WHITE)
        cv2.fillPoly(img, [np.array([(c, m + 14), (_CANVAS - m - 14, c), (c, _CANVAS - m - 14), (m + 14, c)], np.int32)],
                     YELLOW, cv2.LINE_AA)
    # Paint wear: a little per-pixel variation in the print.
    face = img.astype(np.float32) + rng.normal(0, 6, img.shape).astype(np.float32)
    return face, mask.astype(np.float32) / 255.0


def render(cls: int, rng: np.random.Generator) -> np.ndarray:
    """One SIZE x SIZE bgr8 crop of a sign of class `cls`."""
    face, alpha = draw_sign(cls, rng)
    out = 48                                             # render larger, downsample like a real crop
    scale = rng.uniform(0.62, 0.95) * out / _CANVAS
    angle = rng.uniform(-12, 12)
    centre = np.array([out / 2, out / 2]) + rng.uniform(-0.08, 0.08, 2) * out
    src = np.float32([[0, 0], [_CANVAS, 0], [_CANVAS, _CANVAS], [0, _CANVAS]])
    corners = (src - _CANVAS / 2) * scale
    rot = np.array([[math.cos(math.radians(angle)), -math.sin(math.radians(angle))],
                    [math.sin(math.radians(angle)), math.cos(math.radians(angle))]])
    dst = corners @ rot.T + centre
    dst = dst + rng.normal(0, 0.05 * out * scale, dst.shape)   # perspective: seen off-axis
    warp = perspective_matrix(src, dst)
    face = warp_perspective(face, warp, (out, out))
    alpha = warp_perspective(alpha, warp, (out, out))
    shade = np.linspace(rng.uniform(0.6, 1.1), rng.uniform(0.6, 1.1), out, dtype=np.float32)  # uneven light
    face *= shade[None, :, None] if rng.random() < 0.5 else shade[:, None, None]
    img = composite(clutter(rng, out, out), face, alpha)
    if rng.random() < 0.3:                               # occluder: a branch, pole or another car
        x0, y0 = int(rng.integers(0, out)), int(rng.integers(0, out))
        w, h = int(rng.integers(4, out // 3)), int(rng.integers(4, out // 3))
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return finish(img, rng, blur_max=1.0, noise_max=7.0)


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    """n crops with balanced classes (images N x SIZE x SIZE x 3 bgr8, labels N)."""
    rng = np.random.default_rng(seed)
    labels = balanced_labels(n, len(CLASSES), rng)
    images = np.stack([render(int(c), rng) for c in labels]) if n else np.zeros((0, SIZE, SIZE, 3), np.uint8)
    return {'images': images, 'labels': labels}


def load_split(split: str, seed: int = 0, size: int | None = None) -> dict[str, np.ndarray]:
    """A cached split of the synthetic sign set ('train', 'val' or 'test')."""
    return cached_split('signs', SPLITS, split, seed, size, 17, generate)
