"""Declared pre- and post-processing for a user's own models (the CPU sub-tasks).

A user family declares, instead of code:

    pre:  {resize: [W, H], mode: stretch | letterbox, roi: [x0, y0, x1, y1],
           colour: bgr | rgb, layout: nchw | nhwc, scale: 0.0039, mean: [...], std: [...]}
    pre:  {logmel: {sample_rate: 16000, clip_s: 2.0, n_mels: 64, n_fft: 512, hop: 256}}
    post: {format: classifier, top_k: 5}
    post: {format: yolov5 | yolov8, score_threshold: 0.25, iou_threshold: 0.45, max_detections: 100}

Image blocks return the network input and how to map boxes back to source
pixels; detector blocks decode YOLOv5-style [1, N, 5 + C] (cx, cy, w, h,
objectness, class scores) and YOLOv8-style [1, 4 + C, N] (cx, cy, w, h, class
scores) outputs, suppress overlaps per class and return boxes in source pixels.
Every check failure raises InputError (bad input) or ValueError (bad spec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import SAMPLE_RATES_HZ, InputError
from .picture import Placement, roi_pixels

LETTERBOX_FILL = 114            # the grey YOLO pads with


def _numbers(value, n: int, where: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise ValueError(f'{where}: expected a list of {n} numbers, got {value!r}')
    return tuple(float(v) for v in value)


def _check_keys(spec: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f'{where}: unknown keys {unknown}; known: {sorted(allowed)}')


@dataclass(frozen=True)
class ImagePre:
    width: int
    height: int
    mode: str = 'stretch'
    roi: tuple = (0.0, 0.0, 1.0, 1.0)
    colour: str = 'rgb'
    layout: str = 'nchw'
    scale: float = 1.0 / 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)

    KEYS = {'resize', 'mode', 'roi', 'colour', 'layout', 'scale', 'mean', 'std'}

    @classmethod
    def from_spec(cls, spec, where: str) -> 'ImagePre':
        if not isinstance(spec, dict) or 'resize' not in spec:
            raise ValueError(f'{where}: an image pre-processing needs resize: [width, height]')
        _check_keys(spec, cls.KEYS, where)
        w, h = _numbers(spec['resize'], 2, f'{where}.resize')
        if not (w >= 1 and h >= 1 and w == int(w) and h == int(h)):
            raise ValueError(f'{where}.resize: need whole numbers >= 1, got {spec["resize"]}')
        roi = _numbers(spec.get('roi', [0, 0, 1, 1]), 4, f'{where}.roi')
        if not (0 <= roi[0] < roi[2] <= 1 and 0 <= roi[1] < roi[3] <= 1):
            raise ValueError(f'{where}.roi: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {list(roi)}')
        for key, choices in (('mode', ('stretch', 'letterbox')), ('colour', ('rgb', 'bgr')),
                             ('layout', ('nchw', 'nhwc'))):
            if key in spec and spec[key] not in choices:
                raise ValueError(f'{where}.{key}: must be one of {choices}, got {spec[key]!r}')
        scale = spec.get('scale', 1.0 / 255.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f'{where}.scale: must be a number > 0, got {scale!r}')
        std = _numbers(spec.get('std', [1, 1, 1]), 3, f'{where}.std')
        if min(std) <= 0:
            raise ValueError(f'{where}.std: must be > 0, got {list(std)}')
        return cls(int(w), int(h), spec.get('mode', 'stretch'), roi, spec.get('colour', 'rgb'),
                   spec.get('layout', 'nchw'), float(scale), _numbers(spec.get('mean', [0, 0, 0]), 3, f'{where}.mean'),
                   std)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.height, self.width) if self.layout == 'nchw' else (1, self.height, self.width, 3)

    @property
    def picture_size(self) -> tuple[int, int]:
        return self.width, self.height

    def encode(self, frame: np.ndarray) -> tuple[np.ndarray, Placement]:
        """The geometric half (the task node runs it): crop, resize or letterbox -> a bgr8 picture."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f'expected an H x W x 3 uint8 bgr image, got {getattr(frame, "shape", None)}')
        fh, fw = frame.shape[:2]
        x0, y0, x1, y1 = roi_pixels(self.roi, fw, fh, min_side=2)
        crop = frame[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        if self.mode == 'stretch':
            img = cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            return img, Placement(cw / self.width, ch / self.height, x0, y0, fw, fh)
        r = min(self.width / cw, self.height / ch)
        nw, nh = max(1, round(cw * r)), max(1, round(ch * r))
        px, py = (self.width - nw) // 2, (self.height - nh) // 2
        img = np.full((self.height, self.width, 3), LETTERBOX_FILL, np.uint8)
        img[py:py + nh, px:px + nw] = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return img, Placement(1 / r, 1 / r, x0 - px / r, y0 - py / r, fw, fh)

    def tensor(self, picture: np.ndarray) -> np.ndarray:
        """The rest (the executor's pre segment runs it): colour order, normalisation, layout."""
        img = picture[:, :, ::-1] if self.colour == 'rgb' else picture
        x = (img.astype(np.float32) * self.scale - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        x = x.transpose(2, 0, 1) if self.layout == 'nchw' else x
        return np.ascontiguousarray(x[None])

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, Placement]:
        picture, place = self.encode(frame)
        return self.tensor(picture), place


@dataclass(frozen=True)
class LogMelPre:
    sample_rate: int = 16000
    clip_s: float = 2.0
    n_mels: int = 64
    n_fft: int = 512
    hop: int = 256

    @classmethod
    def from_spec(cls, spec, where: str) -> 'LogMelPre':
        spec = spec.get('logmel') if isinstance(spec, dict) else None
        if not isinstance(spec, dict):
            raise ValueError(f'{where}: a sound pre-processing is logmel: {{sample_rate, clip_s, n_mels, n_fft, hop}}')
        _check_keys(spec, set(cls.__dataclass_fields__), f'{where}.logmel')
        out = cls(**{k: type(getattr(cls, k))(v) for k, v in spec.items()})
        if not (SAMPLE_RATES_HZ[0] <= out.sample_rate <= SAMPLE_RATES_HZ[1] and 0 < out.clip_s <= 30 and out.n_mels > 0 and out.hop > 0
                and out.n_fft >= out.hop):
            raise ValueError(f'{where}.logmel: values out of range: {spec}')
        return out

    @property
    def frames(self) -> int:
        return int(self.clip_s * self.sample_rate) // self.hop + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 1, self.n_mels, self.frames)

    def __call__(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, None]:
        import librosa
        x = np.asarray(samples)
        if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
            raise InputError('expected finite mono float samples')
        if int(sample_rate) != self.sample_rate:
            raise InputError(f'audio at {sample_rate} Hz; this model takes {self.sample_rate} Hz')
        n = int(self.clip_s * self.sample_rate)
        x = x[-n:].astype(np.float32)
        if x.size < n:
            x = np.pad(x, (n - x.size, 0))
        mel = librosa.feature.melspectrogram(y=x, sr=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop,
                                             n_mels=self.n_mels)
        logmel = np.log(mel + 1e-6)
        logmel = (logmel - logmel.mean()) / (logmel.std() + 1e-6)
        return logmel[None, None].astype(np.float32), None


POST_FORMATS = ('classifier', 'yolov5', 'yolov8')


@dataclass(frozen=True)
class Post:
    format: str
    top_k: int = 5
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100

    @classmethod
    def from_spec(cls, spec, where: str) -> 'Post':
        if not isinstance(spec, dict) or spec.get('format') not in POST_FORMATS:
            raise ValueError(f'{where}.format: must be one of {POST_FORMATS}, got '
                             f'{spec.get("format") if isinstance(spec, dict) else spec!r}')
        _check_keys(spec, set(cls.__dataclass_fields__), where)
        out = cls(**{k: (str(v) if k == 'format' else type(getattr(cls, k))(v)) for k, v in spec.items()})
        if not (0 <= out.score_threshold <= 1 and 0 < out.iou_threshold <= 1 and out.top_k >= 1
                and out.max_detections >= 1):
            raise ValueError(f'{where}: thresholds must be in [0, 1] and counts >= 1, got {spec}')
        return out

    @property
    def kind(self) -> str:
        return 'classify' if self.format == 'classifier' else 'detect'

    def classes_in(self, shape) -> int | None:
        """The class count an output of this shape holds (None: a dynamic size)."""
        dims = [d if isinstance(d, int) else None for d in shape]
        if self.format == 'classifier':
            return dims[-1] if dims else None
        if len(dims) != 3:
            raise ValueError(f'a {self.format} output is [1, N, 5 + C] or [1, 4 + C, N], got {list(shape)}')
        if self.format == 'yolov5':
            return None if dims[2] is None else dims[2] - 5
        return None if dims[1] is None else dims[1] - 4

    def classify(self, y: np.ndarray, labels) -> list[tuple[str, int, float]]:
        z = np.asarray(y, np.float64).reshape(-1)
        if z.size != len(labels):
            raise InputError(f'classifier output of {z.size} values for {len(labels)} labels')
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)[:min(self.top_k, len(labels))]
        return [(labels[i], int(i), float(p[i])) for i in order]

    def detect(self, y: np.ndarray, labels, place: Placement) -> list[tuple[str, int, float, tuple]]:
        a = np.asarray(y, np.float32)
        if a.ndim != 3 or a.shape[0] != 1:
            raise InputError(f'detector output of shape {a.shape}; expected [1, ...]')
        a = a[0]
        if self.format == 'yolov8':                      # [4 + C, N] -> [N, 4 + C]
            a = a.T
            boxes, cls_scores = a[:, :4], a[:, 4:]
            scores_all = cls_scores
        else:                                            # [N, 5 + C]
            boxes, scores_all = a[:, :4], a[:, 4:5] * a[:, 5:]
        if scores_all.shape[1] != len(labels):
            raise InputError(f'detector output with {scores_all.shape[1]} classes for {len(labels)} labels')
        classes = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(classes)), classes]
        keep = scores >= self.score_threshold
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        if not len(scores):
            return []
        xywh = np.stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2], boxes[:, 3]], 1)
        kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.astype(float).tolist(), classes.astype(int).tolist(),
                                       self.score_threshold, self.iou_threshold)
        kept = sorted(np.asarray(kept, np.int64).reshape(-1).tolist(), key=lambda i: -scores[i])[:self.max_detections]
        corners = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]][kept]      # x0, y0, x1, y1
        return [(labels[classes[i]], int(classes[i]), float(scores[i]), tuple(float(v) for v in box))
                for i, box in zip(kept, place.to_source(corners))]
