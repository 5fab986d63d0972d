"""Synthetic F1/10 driving sequences: camera frames with traffic lights and signs.

The car drives through a series of scenes (a few seconds each). Each scene
has 0-3 traffic lights (lights.render) and, most of the time, a traffic sign
on the right-hand side of the road, where the sign task looks (SIGN_ROI).
Within a scene the view slowly zooms in as the car approaches, with fresh
sensor noise every frame. Each frame comes with its ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import lights, signs

SIGN_ROI = (0.6, 0.1, 0.98, 0.6)      # fractions of the frame: x0, y0, x1, y1


@dataclass
class Frame:
    image: np.ndarray                  # bgr8
    lights: list                       # [(state, (x0, y0, x1, y1))]
    sign: str | None


class DriveSequence:
    """An endless, seeded sequence of frames at the camera's resolution."""

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, scene_s: float = 3.0, seed: int = 0):
        self.w, self.h, self.fps = width, height, fps
        self.frames_per_scene = max(1, int(scene_s * fps))
        self.rng = np.random.default_rng(seed)
        # Sensor noise: a few precomputed fields, cycled (drawing a fresh 640x480
        # field every frame would cost more than the camera's frame time), each kept as
        # its positive and negative parts: a saturating add then subtract of two uint8
        # fields is clip(image + noise), at a tenth of the cost of an int16 add.
        self.noise = []
        for _ in range(6):
            field = np.rint(self.rng.normal(0, 3.0, (height, width, 3)))
            self.noise.append((np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8)))
        self.k = 0
        self._new_scene()

    def _new_scene(self) -> None:
        rng = self.rng
        img, boxes, states = lights.render(rng, self.w, self.h, n_lights=int(rng.integers(0, 4)))
        self.sign = None
        if rng.random() < 0.8:
            cls = int(rng.integers(0, len(signs.CLASSES)))
            face, alpha = signs.draw_sign(cls, rng)
            x0, y0, x1, y1 = (int(SIGN_ROI[0] * self.w), int(SIGN_ROI[1] * self.h),
                              int(SIGN_ROI[2] * self.w), int(SIGN_ROI[3] * self.h))
            side = int(min(x1 - x0, y1 - y0) * rng.uniform(0.6, 0.85))
            cx = (x0 + x1) // 2 + int(rng.integers(-(x1 - x0) // 10, (x1 - x0) // 10 + 1))
            cy = (y0 + y1) // 2 + int(rng.integers(-(y1 - y0) // 10, (y1 - y0) // 10 + 1))
            face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, (side, side), interpolation=cv2.INTER_AREA)[:, :, None]
            sx, sy = cx - side // 2, cy - side // 2
            region = img[sy:sy + side, sx:sx + side].astype(np.float32)
            img[sy:sy + side, sx:sx + side] = np.clip(region * (1 - alpha) + face * alpha, 0, 255).astype(np.uint8)
            cv2.line(img, (cx, cy + side // 2), (cx, self.h), (80, 80, 80), max(2, side // 20))
            self.sign = signs.CLASSES[cls]
        self.base = img
        self.truth = [(lights.STATES[s], tuple(float(v) for v in b)) for b, s in zip(boxes, states)]

    def next(self) -> Frame:
        if self.k and self.k % self.frames_per_scene == 0:
            self._new_scene()
        t = (self.k % self.frames_per_scene) / self.frames_per_scene
        self.k += 1
        zoom = 1.0 + 0.08 * t                     # approaching: the view grows slowly
        # A zoom about (cx, cy) is the window of the scene that fills the frame, scaled up.
        cx, cy = self.w / 2, self.h * 0.45
        x0, y0 = int(round(cx - cx / zoom)), int(round(cy - cy / zoom))
        x1, y1 = int(round(cx + (self.w - cx) / zoom)), int(round(cy + (self.h - cy) / zoom))
        img = cv2.resize(self.base[y0:y1, x0:x1], (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        up, down = self.noise[self.k % len(self.noise)]
        img = cv2.subtract(cv2.add(img, up), down)
        sx, sy = self.w / (x1 - x0), self.h / (y1 - y0)
        boxes = [(state, ((bx0 - x0) * sx, (by0 - y0) * sy, (bx1 - x0) * sx, (by1 - y0) * sy))
                 for state, (bx0, by0, bx1, by1) in self.truth]
        return Frame(img, boxes, self.sign)
