"""What a camera task's model reads, and where it lies in the source frame.

A family's pre-processing of a frame has two halves: `encode` cuts and scales
the frame to the model's input picture (crop to the region of interest, resize,
letterbox: uint8, bgr), and `tensor` turns that picture into the network input
(colour order, normalisation, layout). The task node runs encode on the frame
it receives and sends only the picture and its Placement; the executor's
pre-processing segment runs tensor. Boxes go back to source pixels through the
Placement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import InputError


@dataclass(frozen=True)
class Placement:
    """Where the picture sits in the source frame: source = picture * scale + offset
    (boxes are clipped to the frame, width x height)."""
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    width: float = math.inf
    height: float = math.inf

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """N x 4 boxes (x0, y0, x1, y1) in picture pixels -> source pixels."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = b * [self.scale_x, self.scale_y, self.scale_x, self.scale_y] + \
            [self.offset_x, self.offset_y, self.offset_x, self.offset_y]
        return np.clip(out, 0, [self.width, self.height, self.width, self.height])


@dataclass(frozen=True)
class Picture:
    """A model-sized bgr8 picture cut from a camera frame, and where it came from."""
    image: np.ndarray
    place: Placement


def roi_pixels(roi, width: int, height: int, min_side: int) -> tuple[int, int, int, int]:
    """The region of interest (fractions x0, y0, x1, y1) in pixels of a width x height frame."""
    x0, y0 = int(roi[0] * width), int(roi[1] * height)
    x1, y1 = int(round(roi[2] * width)), int(round(roi[3] * height))
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise InputError(f'region of interest {list(roi)} is empty on a {width}x{height} frame')
    return x0, y0, x1, y1
