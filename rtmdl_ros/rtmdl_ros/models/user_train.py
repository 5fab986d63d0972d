"""`rtmdl train DATA --out FAMILY`: a weight-shared width x depth family for a user's data.

DATA is an image-classification folder (one subfolder per class) or a
detection set in YOLO txt format (images/, labels/ and classes.txt or
data.yaml naming the classes). The supernet and its training are the zoo's
(models/supernet.py, models/train.py); what is written is a user family
(models/user_family.py) that a task set points at with `model: FAMILY`:

    FAMILY/family.yaml        labels, declared pre/post, variants with accuracy, how it was made
    FAMILY/supernet.pt        the shared weights (every variant's slice and batch-norm set)
    FAMILY/<variant>.onnx     one stand-alone file per variant, for the executor

Detector variants are exported with the grid decoded into the YOLOv5 layout
[1, N, 5 + C] (box centre and size in input pixels, objectness, class
probabilities), so the declared `yolov5` post block reads them like any
other YOLOv5-style model. Accuracy per variant (top-1 or mAP@0.5) is
measured on a held-out fifth of the data through the very segments the
executor runs: declared pre-processing, the ONNX file, declared post-processing.
family.yaml is written last, so a folder without it is an unfinished one.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import warnings

import cv2
import numpy as np
import torch
import yaml

from ..core.files import atomic_write
from ..data import DatasetError
from ..data.labelled import classification_folder, yolo_folder
from . import IMAGE, detection
from .supernet import SuperNet, VariantView, all_variants
from .train import Split, build, evaluate, fit

FAMILY_FILE = 'family.yaml'
CHECKPOINT = 'supernet.pt'
# Architectures: the zoo's sign classifier and traffic-light detector (stride 8).
ARCH = {'classify': dict(in_channels=3, stem=16, stages=[(24, 2), (48, 2), (64, 2)]),
        'detect': dict(in_channels=3, stem=16, stem_stride=2, stages=[(32, 2), (48, 2), (64, 1)])}
DEFAULT_INPUT = {'classify': (32, 32), 'detect': (128, 96)}
DEFAULT_EPOCHS = {'classify': 12, 'detect': 20}
# Pre-processing the supernet was trained with: stretch, bgr, x * 2/255 - 1.
PRE = {'mode': 'stretch', 'colour': 'bgr', 'layout': 'nchw', 'scale': 2.0 / 255.0, 'mean': [1.0, 1.0, 1.0],
       'std': [1.0, 1.0, 1.0]}
POST = {'classify': {'format': 'classifier', 'top_k': 3},
        'detect': {'format': 'yolov5', 'score_threshold': 0.3, 'iou_threshold': 0.45, 'max_detections': 50}}


def layout(root: str) -> str:
    """'detect' for a YOLO set (images/ + labels/), 'classify' for class subfolders."""
    if not os.path.isdir(root):
        raise DatasetError(f'{root}: no such folder')
    if os.path.isdir(os.path.join(root, 'images')) and os.path.isdir(os.path.join(root, 'labels')):
        return 'detect'
    if any(os.path.isdir(os.path.join(root, d)) for d in os.listdir(root)):
        return 'classify'
    raise DatasetError(f'{root}: neither class subfolders (ROOT/<label>/*.png) nor a YOLO set '
                       '(ROOT/images, ROOT/labels)')


def yolo_classes(root: str) -> tuple[str, ...]:
    """Class names of a YOLO set: classes.txt (one per line) or data.yaml `names`."""
    txt, data_yaml = os.path.join(root, 'classes.txt'), os.path.join(root, 'data.yaml')
    if os.path.isfile(txt):
        with open(txt, encoding='utf-8') as f:
            names = [line.strip() for line in f if line.strip()]
    elif os.path.isfile(data_yaml):
        with open(data_yaml, encoding='utf-8') as f:
            names = (yaml.safe_load(f) or {}).get('names')
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else names
    else:
        raise DatasetError(f'{root}: a YOLO set names its classes in classes.txt or data.yaml (names:)')
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(f'{root}: the class list is empty or not a list of names')
    return tuple(names)


def read_samples(root: str) -> tuple[str, tuple[str, ...], list]:
    """(kind, labels, samples as data/labelled returns them) of a user's folder."""
    kind = layout(root)
    if kind == 'classify':
        labels = tuple(sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))))
        return kind, labels, classification_folder(root, labels)
    labels = yolo_classes(root)
    return kind, labels, yolo_folder(root, len(labels))


def held_out(n: int, seed: int, share: float = 0.2) -> np.ndarray:
    """A fixed random fifth of the indices, for the accuracy per variant."""
    if n < 10:
        raise DatasetError(f'{n} labelled images are too few to train and measure a family (10 at least)')
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:max(2, int(round(share * n)))])


def to_split(kind: str, samples: list, size: tuple[int, int], n_labels: int) -> Split:
    """Network inputs (stretched to size, as the declared pre-processing does) and targets."""
    w, h = size
    images = np.stack([cv2.resize(s[0], (w, h), interpolation=cv2.INTER_LINEAR) for s in samples])
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    if kind == 'classify':
        return Split(x, torch.as_tensor([s[1] for s in samples], dtype=torch.int64))
    targets, truths = [], []
    for img, boxes, classes in samples:
        sx, sy = w / img.shape[1], h / img.shape[0]
        b = boxes * np.array([sx, sy, sx, sy], np.float32)
        targets.append(detection.encode(b, classes, h // detection.STRIDE, w // detection.STRIDE, n_labels))
        truths.append((b, classes))
    return Split(x, torch.from_numpy(np.stack(targets)), truths)


class GridAsYoloV5(torch.nn.Module):
    """A grid-head variant whose output is decoded into [1, N, 5 + C]: cx, cy, w, h (input
    pixels), objectness and class probabilities, one row per cell (models/detection.py's code)."""

    def __init__(self, view: VariantView, grid_h: int, grid_w: int):
        super().__init__()
        self.view = view
        ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float32), torch.arange(grid_w, dtype=torch.float32),
                                indexing='ij')
        self.register_buffer('gx', xs.reshape(1, -1))
        self.register_buffer('gy', ys.reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.view(x).flatten(2)                          # [1, 5 + C, N]
        s, a = float(detection.STRIDE), detection.ANCHOR_PX
        cx = (self.gx + torch.sigmoid(raw[:, 1])) * s
        cy = (self.gy + torch.sigmoid(raw[:, 2])) * s
        w = torch.exp(torch.clamp(raw[:, 3], -4, 4)) * a
        h = torch.exp(torch.clamp(raw[:, 4], -4, 4)) * a
        obj = torch.sigmoid(raw[:, 0])
        probs = torch.softmax(raw[:, detection.BOX_CHANNELS:], dim=1)
        return torch.cat([torch.stack([cx, cy, w, h, obj], dim=1), probs], dim=1).transpose(1, 2)


def export_variant(net: SuperNet, kind: str, variant: str, size: tuple[int, int], path: str) -> None:
    w, h = size
    module = VariantView(net, variant).eval()
    if kind == 'detect':
        module = GridAsYoloV5(module, h // detection.STRIDE, w // detection.STRIDE).eval()

    def write(f):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(module, (torch.zeros(1, 3, h, w),), f, input_names=['images'], output_names=['output'],
                              opset_version=17, do_constant_folding=True, dynamo=False)
    atomic_write(path, write, binary=True)


def _data_digest(samples: list) -> str:
    """What the family was trained on, as a short hash of its images and labels."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(np.ascontiguousarray(s[0][::8, ::8]).tobytes())
        for part in s[1:]:
            digest.update(np.asarray(part).tobytes())
    return digest.hexdigest()[:12]


def train_family(data: str, out: str, measure, name: str | None = None, epochs: int | None = None,
                 input_size: tuple[int, int] | None = None, widths=None, depths=None, seed: int = 0,
                 batch_size: int = 64, progress: bool = True, command: str = '', roi=None) -> dict:
    """Train, export and measure a family for the data under `data`; returns family.yaml's content.

    measure(family, samples) -> accuracy per variant, through the runtime's segments
    (the caller brings the backend: models sit below backends). roi: the crop of a camera
    frame the images are (fractions x0 y0 x1 y1), declared in the family's pre-processing."""
    from .user_family import user_family
    kind, labels, samples = read_samples(data)
    size = tuple(input_size or DEFAULT_INPUT[kind])
    if kind == 'detect' and (size[0] % detection.STRIDE or size[1] % detection.STRIDE):
        raise ValueError(f'--input {size[0]} {size[1]}: a detector input is a multiple of {detection.STRIDE}')
    if min(size) < 16 or max(size) > 1024:
        raise ValueError(f'--input {size[0]} {size[1]}: each side in 16..1024 pixels')
    widths, depths = tuple(widths or (0.25, 0.5, 0.75, 1.0)), tuple(depths or (1, 2, 3))
    if not all(0 < w <= 1 for w in widths) or len(set(widths)) != len(widths):
        raise ValueError(f'--widths: distinct multipliers in (0, 1], got {list(widths)}')
    if not all(1 <= d <= 4 for d in depths) or len(set(depths)) != len(depths):
        raise ValueError(f'--depths: distinct block counts in 1..4, got {list(depths)}')
    variants = all_variants(widths, depths)
    epochs = epochs or DEFAULT_EPOCHS[kind]
    test_idx = held_out(len(samples), seed)
    test_set = set(test_idx.tolist())
    train_samples = [s for i, s in enumerate(samples) if i not in test_set]
    test_samples = [samples[i] for i in test_idx]
    torch.manual_seed(seed)
    net = build(ARCH[kind], kind, len(labels), variants)
    train_split = to_split(kind, train_samples, size, len(labels))
    train_s = fit(net, kind, train_split, epochs, seed, batch_size, mirror=kind == 'detect', progress=progress,
                  desc=f'train {name or os.path.basename(os.path.abspath(out))}')
    net.eval()
    os.makedirs(out, exist_ok=True)
    stale = os.path.join(out, FAMILY_FILE)
    if os.path.exists(stale):
        os.unlink(stale)                       # the folder is unfinished until the new one is written
    payload = {'config': net.config, 'state_dict': net.state_dict(), 'kind': kind, 'labels': list(labels),
               'input': list(size)}
    atomic_write(os.path.join(out, CHECKPOINT), lambda f: torch.save(payload, f), binary=True)
    spec = {'input': IMAGE, 'labels': list(labels), 'weight_group': name or os.path.basename(os.path.abspath(out)),
            'pre': {'resize': list(size), **PRE, **({'roi': [float(v) for v in roi]} if roi else {})}, 'post': dict(POST[kind]), 'variants': {}}
    for v in net.variants:
        export_variant(net, kind, v.name, size, os.path.join(out, f'{v.name}.onnx'))
        spec['variants'][v.name] = {'onnx': f'{v.name}.onnx', 'accuracy': 0.0}
    # Measured on the held-out images through the declared pre/post and the ONNX files; the
    # images already are the ROI's crop, so they are measured without cropping again.
    as_cropped = {**spec, 'pre': {k: v for k, v in spec['pre'].items() if k != 'roi'}}
    measured = measure(user_family(name or 'family', as_cropped, out, f'family {out}'), test_samples)
    torch_metric = {v.name: evaluate(net, kind, to_split(kind, test_samples, size, len(labels)), v.name)
                    for v in net.variants}
    for v, acc in measured.items():
        spec['variants'][v]['accuracy'] = round(float(acc), 4)
    separate = sum(os.path.getsize(os.path.join(out, f'{v}.onnx')) for v in spec['variants'])
    spec['accuracy_measured'] = {
        'metric': 'top-1' if kind == 'classify' else 'mAP@0.5', 'data': os.path.abspath(data),
        'images': len(test_samples), 'split': f'held-out {len(test_samples)} of {len(samples)} (seed {seed})',
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
    spec['trained'] = {
        'command': command, 'kind': kind, 'epochs': epochs, 'seed': seed, 'input': list(size),
        'train_images': len(train_samples), 'data_digest': _data_digest(samples), 'train_s': round(train_s, 1),
        'torch': str(torch.__version__), 'torch_metric': {k: round(float(x), 4) for k, x in torch_metric.items()},
        'storage': {'shared_checkpoint_bytes': os.path.getsize(os.path.join(out, CHECKPOINT)),
                    'separate_onnx_bytes': separate,
                    'largest_onnx_bytes': max(os.path.getsize(os.path.join(out, f'{v}.onnx'))
                                              for v in spec['variants'])}}

    def write(f):
        f.write(f'# A weight-shared family made by `{command or "rtmdl train"}`; point a task at this folder\n'
                '# with `model: <folder>` (docs/byom.md). Accuracy per variant: measured (accuracy_measured).\n')
        yaml.safe_dump(spec, f, sort_keys=False, width=160)
    atomic_write(os.path.join(out, FAMILY_FILE), write)
    user_family(name or 'family', spec, out, f'family {out}')          # what we wrote loads
    return spec
