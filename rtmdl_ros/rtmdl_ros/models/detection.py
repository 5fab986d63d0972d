"""Single-stage grid detector encoding (tiny-YOLO style), decoding and mAP.

Each cell of the stride-STRIDE output map predicts: objectness, the box centre
within the cell (dx, dy, through a sigmoid), the box size as log(w / ANCHOR_PX)
and log(h / ANCHOR_PX), and one logit per state. A light is assigned to the cell
holding its centre.
"""
from __future__ import annotations

import cv2
import numpy as np

STRIDE = 8
ANCHOR_PX = 8.0
BOX_CHANNELS = 5          # obj, dx, dy, log w, log h


def outputs(n_classes: int) -> int:
    return BOX_CHANNELS + n_classes


def encode(boxes: np.ndarray, labels: np.ndarray, grid_h: int, grid_w: int, n_classes: int) -> np.ndarray:
    """Targets per image (C x grid_h x grid_w): obj, dx, dy, log w, log h, class index."""
    t = np.zeros((6, grid_h, grid_w), np.float32)
    t[5] = -1
    for (x0, y0, x1, y1), c in zip(boxes, labels):
        if c < 0:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        gx, gy = min(grid_w - 1, int(cx)), min(grid_h - 1, int(cy))
        t[:, gy, gx] = (1.0, cx - gx, cy - gy, np.log(max(x1 - x0, 1) / ANCHOR_PX),
                        np.log(max(y1 - y0, 1) / ANCHOR_PX), c)
    return t


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode(raw: np.ndarray, score_threshold: float = 0.3, iou_threshold: float = 0.45,
           scale_x: float = 1.0, scale_y: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N x 4, x0 y0 x1 y1 in source pixels), scores and classes of one image's map.

    raw: C x grid_h x grid_w network output. Scores are objectness x class
    probability; overlapping boxes are suppressed per class (OpenCV NMS).
    """
    obj = _sigmoid(raw[0])
    ys, xs = np.nonzero(obj >= score_threshold)
    if len(ys) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    cell = raw[:, ys, xs]
    logits = cell[BOX_CHANNELS:]
    probs = np.exp(logits - logits.max(axis=0))
    probs /= probs.sum(axis=0)
    classes = probs.argmax(axis=0)
    scores = obj[ys, xs] * probs.max(axis=0)
    cx = (xs + _sigmoid(cell[1])) * STRIDE
    cy = (ys + _sigmoid(cell[2])) * STRIDE
    w = np.exp(np.clip(cell[3], -4, 4)) * ANCHOR_PX
    h = np.exp(np.clip(cell[4], -4, 4)) * ANCHOR_PX
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * [scale_x, scale_y, scale_x, scale_y]
    keep = []
    for c in np.unique(classes):
        idx = np.nonzero(classes == c)[0]
        rects = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes[idx]]
        kept = cv2.dnn.NMSBoxes(rects, scores[idx].astype(float).tolist(), score_threshold, iou_threshold)
        keep.extend(idx[np.asarray(kept, np.int64).reshape(-1)])
    keep = np.asarray(sorted(keep, key=lambda i: -scores[i]), np.int64)
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep].astype(np.int64)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box in a (N x 4) with each in b (M x 4)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def mean_average_precision(predictions, truths, n_classes: int, iou_threshold: float = 0.5) -> float:
    """mAP@iou_threshold (VOC all-point interpolation), averaged over classes present.

    predictions: per image (boxes, scores, classes); truths: per image (boxes, classes).
    """
    aps = []
    for c in range(n_classes):
        n_true = sum(int(np.sum(tc == c)) for _, tc in truths)
        if n_true == 0:
            continue
        hits = []                                       # (score, is_true_positive)
        for (pb, ps, pc), (tb, tc) in zip(predictions, truths):
            pb, ps = pb[pc == c], ps[pc == c]
            tb = tb[tc == c]
            used = np.zeros(len(tb), bool)
            for i in np.argsort(-ps):
                ok = False
                if len(tb):
                    overlaps = iou(pb[i:i + 1], tb)[0]
                    j = int(np.argmax(overlaps))
                    if overlaps[j] >= iou_threshold and not used[j]:
                        used[j] = ok = True
                hits.append((float(ps[i]), ok))
        if not hits:
            aps.append(0.0)
            continue
        hits.sort(key=lambda h: -h[0])
        tp = np.cumsum([h[1] for h in hits])
        fp = np.cumsum([not h[1] for h in hits])
        recall = tp / n_true
        precision = tp / np.maximum(tp + fp, 1)
        # Precision envelope, integrated over recall.
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])))
    return float(np.mean(aps)) if aps else 0.0
