"""Rear-camera scenes for the two-camera example, written as the folders a user brings.

A rendered road seen from the back of the car, with a ground marking behind
it (none, a stop line or a zebra crossing) and 0-3 obstacles (cones and
pedestrians). `write_example_data` writes, under OUT:

    markings/<none|stop_line|crossing>/NNNN.png   the lower half of each scene (classification folder)
    obstacles/images/NNNN.png, labels/NNNN.txt    full scenes, YOLO txt boxes; classes.txt
    stream/NNNN.png                               other scenes, for a camera_source to replay

These are what `rtmdl train` turns into user families (docs/byom.md); nothing
here is known to the rest of the package.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

WIDTH, HEIGHT = 320, 240
HORIZON = 70
MARKINGS = ('none', 'stop_line', 'crossing')
OBSTACLES = ('cone', 'pedestrian')


def _road(rng: np.random.Generator) -> np.ndarray:
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    sky = rng.integers(150, 230, 3)
    img[:HORIZON] = sky
    grey = int(rng.integers(60, 110))
    img[HORIZON:] = (grey, grey, grey + int(rng.integers(-8, 8)))
    noise = rng.normal(0, 6, (HEIGHT - HORIZON, WIDTH, 1))
    img[HORIZON:] = np.clip(img[HORIZON:] + noise, 0, 255).astype(np.uint8)
    cx = WIDTH // 2 + int(rng.integers(-30, 30))
    for side in (-1, 1):                              # lane edges converge to the horizon
        cv2.line(img, (cx + side * 12, HORIZON), (cx + side * 150, HEIGHT), (230, 230, 230), 3)
    return img


def _marking(img: np.ndarray, kind: str, rng: np.random.Generator) -> None:
    if kind == 'none':
        return
    y = int(rng.integers(HEIGHT // 2 + 15, HEIGHT - 25))
    shade = int(rng.integers(200, 255))
    if kind == 'stop_line':
        cv2.rectangle(img, (0, y), (WIDTH, y + int(rng.integers(8, 16))), (shade,) * 3, -1)
    else:
        height, gap = int(rng.integers(16, 28)), int(rng.integers(10, 16))
        for x in range(int(rng.integers(0, gap)), WIDTH, 2 * gap):
            cv2.rectangle(img, (x, y), (x + gap, y + height), (shade,) * 3, -1)


def _cone(img: np.ndarray, x: int, y: int, h: int) -> tuple[int, int, int, int]:
    w = max(6, int(h * 0.7))
    pts = np.array([[x, y + h], [x + w, y + h], [x + w // 2, y]], np.int32)
    cv2.fillConvexPoly(img, pts, (0, 110, 250))
    band = y + int(h * 0.55)
    cv2.line(img, (x + w // 4, band), (x + 3 * w // 4, band), (245, 245, 245), max(1, h // 8))
    return x, y, x + w, y + h


def _pedestrian(img: np.ndarray, x: int, y: int, h: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    w = max(6, int(h * 0.4))
    head = max(2, h // 8)
    coat = tuple(int(c) for c in rng.integers(0, 200, 3))
    cv2.circle(img, (x + w // 2, y + head), head, (80, 120, 170), -1)
    cv2.rectangle(img, (x, y + 2 * head), (x + w, y + int(h * 0.6)), coat, -1)
    cv2.rectangle(img, (x + 1, y + int(h * 0.6)), (x + w // 2 - 1, y + h), (40, 40, 60), -1)
    cv2.rectangle(img, (x + w // 2 + 1, y + int(h * 0.6)), (x + w - 1, y + h), (40, 40, 60), -1)
    return x, y, x + w, y + h


def scene(rng: np.random.Generator) -> tuple[np.ndarray, int, list[tuple[int, tuple[float, ...]]]]:
    """(bgr image, marking index, [(obstacle class, (x0, y0, x1, y1))])."""
    img = _road(rng)
    marking = int(rng.integers(0, len(MARKINGS)))
    _marking(img, MARKINGS[marking], rng)
    objects = []
    for _ in range(int(rng.integers(0, 4))):
        cls = int(rng.integers(0, len(OBSTACLES)))
        h = int(rng.integers(24, 80))
        x = int(rng.integers(0, WIDTH - h))
        y = int(rng.integers(HORIZON - h // 3, HEIGHT - h))
        box = _cone(img, x, y, h) if cls == 0 else _pedestrian(img, x, y, h, rng)
        objects.append((cls, tuple(float(v) for v in box)))
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return img, marking, objects


def write_example_data(out: str, scenes: int = 900, stream: int = 60, seed: int = 0) -> dict:
    """Write the three folders; returns their paths."""
    rng = np.random.default_rng(seed)
    paths = {'markings': os.path.join(out, 'markings'), 'obstacles': os.path.join(out, 'obstacles'),
             'stream': os.path.join(out, 'stream')}
    for label in MARKINGS:
        os.makedirs(os.path.join(paths['markings'], label), exist_ok=True)
    for sub in ('images', 'labels'):
        os.makedirs(os.path.join(paths['obstacles'], sub), exist_ok=True)
    os.makedirs(paths['stream'], exist_ok=True)
    with open(os.path.join(paths['obstacles'], 'classes.txt'), 'w', encoding='utf-8') as f:
        f.write(''.join(f'{c}\n' for c in OBSTACLES))
    for k in range(scenes):
        img, marking, objects = scene(rng)
        name = f'{k:04d}'
        cv2.imwrite(os.path.join(paths['markings'], MARKINGS[marking], f'{name}.png'), img[HEIGHT // 2:])
        cv2.imwrite(os.path.join(paths['obstacles'], 'images', f'{name}.png'), img)
        with open(os.path.join(paths['obstacles'], 'labels', f'{name}.txt'), 'w', encoding='utf-8') as f:
            for cls, (x0, y0, x1, y1) in objects:
                f.write(f'{cls} {(x0 + x1) / 2 / WIDTH:.6f} {(y0 + y1) / 2 / HEIGHT:.6f} '
                        f'{(x1 - x0) / WIDTH:.6f} {(y1 - y0) / HEIGHT:.6f}\n')
    for k in range(stream):
        cv2.imwrite(os.path.join(paths['stream'], f'{k:04d}.png'), scene(rng)[0])
    return paths
