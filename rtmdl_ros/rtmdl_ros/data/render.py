"""Image-rendering helpers shared by the synthetic sign and road-scene generators."""
from __future__ import annotations

import cv2
import numpy as np


def clutter(rng: np.random.Generator, h: int, w: int, shapes: int = 12) -> np.ndarray:
    """A cluttered bgr8 background: a lit gradient, blobs, bars and texture noise."""
    top, bottom = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).repeat(w, axis=1)
    img = np.ascontiguousarray(img, dtype=np.float32)
    for _ in range(int(rng.integers(shapes // 2, shapes + 1))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(3, w // 2 + 4)), y + int(rng.integers(3, h // 2 + 4))),
                          colour, -1)
        elif kind == 1:
            cv2.ellipse(img, (x, y), (int(rng.integers(2, w // 3 + 3)), int(rng.integers(2, h // 3 + 3))),
                        float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            cv2.line(img, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), colour,
                     int(rng.integers(1, max(2, w // 16))))
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), float(rng.uniform(0.5, 3)))
    img += noise[:, :, None] * rng.uniform(2, 14)
    return img


def finish(img: np.ndarray, rng: np.random.Generator, blur_max: float = 1.2, noise_max: float = 8.0) -> np.ndarray:
    """Camera effects on a float image: exposure, colour cast, blur, sensor noise -> uint8."""
    img = img * rng.uniform(0.45, 1.35) + rng.uniform(-25, 25)
    img = img * rng.uniform(0.85, 1.15, 3)[None, None, :]
    sigma = rng.uniform(0, blur_max)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(0, noise_max), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def composite(background: np.ndarray, sprite: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend a float sprite (same size as background) with alpha in [0, 1]."""
    a = alpha[:, :, None]
    return background * (1.0 - a) + sprite * a


def perspective_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 homography taking four src points to four dst points (float64)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(np.asarray(src, np.float64), np.asarray(dst, np.float64)):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows), np.array(rhs)), 1.0).reshape(3, 3)


def warp_perspective(img: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2.warpPerspective (bilinear, zero border) in float64 numpy. OpenCV releases
    interpolate with other fixed-point tables (4.x and 5.x differ by up to 5 grey
    levels), and a data set must be the same whichever release draws it."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    inv = np.linalg.inv(np.asarray(matrix, np.float64))
    den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    sx = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
    sy = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
    pad = np.pad(np.asarray(img, np.float64), ((1, 1), (1, 1)) + ((0, 0),) * (img.ndim - 2))
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    if img.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    ix, ix1 = _padded_index(x0, img.shape[1]), _padded_index(x0 + 1, img.shape[1])
    iy, iy1 = _padded_index(y0, img.shape[0]), _padded_index(y0 + 1, img.shape[0])
    top = pad[iy, ix] * (1 - fx) + pad[iy, ix1] * fx
    bottom = pad[iy1, ix] * (1 - fx) + pad[iy1, ix1] * fx
    return (top * (1 - fy) + bottom * fy).astype(img.dtype)


def _padded_index(i: np.ndarray, n: int) -> np.ndarray:
    """Index into a 1-pixel zero-padded axis of length n; anything outside lands on the rim."""
    p = i + 1
    return np.where((p >= 0) & (p <= n + 1), p, n + 1).astype(np.intp)
