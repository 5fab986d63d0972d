"""Labelled folders a user has: an image-classification folder and a YOLO detection set.

classification:  ROOT/<label>/*.png|jpg|...       one subfolder per class (names = labels)
detection:       ROOT/images/*.png|jpg|...        and ROOT/labels/<same stem>.txt with one
                 line per object: "class cx cy w h", all but the class as fractions of the image
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from . import DatasetError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm')


def _images(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def _read(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f'{path}: not an image OpenCV can read')
    return img


def classification_folder(root: str, labels: tuple[str, ...]) -> list[tuple[np.ndarray, int]]:
    """(bgr image, label index) for every image under ROOT/<label>/; every subfolder must be a label."""
    if not os.path.isdir(root):
        raise DatasetError(f'{root}: no such folder')
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    unknown = [d for d in folders if d not in labels]
    if unknown:
        raise DatasetError(f'{root}: subfolders {unknown} are not labels of the model ({list(labels)})')
    out = [(_read(p), labels.index(d)) for d in folders for p in _images(os.path.join(root, d))]
    if not out:
        raise DatasetError(f'{root}: no images in its label subfolders')
    return out


def yolo_folder(root: str, n_classes: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(bgr image, boxes N x 4 in pixels x0 y0 x1 y1, classes N) for every image of a YOLO txt set."""
    images, labels = os.path.join(root, 'images'), os.path.join(root, 'labels')
    if not os.path.isdir(images) or not os.path.isdir(labels):
        raise DatasetError(f'{root}: a YOLO set has images/ and labels/')
    out = []
    for path in _images(images):
        img = _read(path)
        h, w = img.shape[:2]
        txt = os.path.join(labels, os.path.splitext(os.path.basename(path))[0] + '.txt')
        rows = []
        if os.path.exists(txt):
            with open(txt) as f:
                for k, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    try:
                        c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
                    except (ValueError, TypeError):
                        raise DatasetError(f'{txt}:{k}: expected "class cx cy w h", got {line.strip()!r}') from None
                    if not 0 <= c < n_classes:
                        raise DatasetError(f'{txt}:{k}: class {c} is not one of the model\'s {n_classes}')
                    rows.append((c, (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        boxes = np.array([r[1:] for r in rows], np.float32).reshape(-1, 4)
        out.append((img, boxes, np.array([r[0] for r in rows], np.int64)))
    if not out:
        raise DatasetError(f'{images}: no images')
    return out
