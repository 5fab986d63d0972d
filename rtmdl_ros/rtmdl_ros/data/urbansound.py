"""Loader for the real UrbanSound8K data set, for users who have it on disk.

Layout as distributed: ROOT/metadata/UrbanSound8K.csv (slice_file_name, fsID,
start, end, salience, fold, classID, class) and ROOT/audio/foldN/*.wav.
Folds 1-8 train, fold 9 validates and fold 10 tests (a fixed split, so numbers
are comparable between runs). Clips are resampled to the network's rate, made
mono and centre-cropped or padded to CLIP_S seconds.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from . import DatasetError
from .sounds import CLASSES, CLIP_S, SAMPLE_RATE

FOLDS = {'train': set(range(1, 9)), 'val': {9}, 'test': {10}}


def fit_clip(x: np.ndarray) -> np.ndarray:
    n = int(CLIP_S * SAMPLE_RATE)
    if x.size >= n:
        start = (x.size - n) // 2
        return x[start:start + n]
    pad = n - x.size
    return np.pad(x, (pad // 2, pad - pad // 2))


def load(root: str, split: str) -> dict[str, np.ndarray]:
    """audio (N x samples float32) and labels (classID, same order as sounds.CLASSES)."""
    if split not in FOLDS:
        raise DatasetError(f'split must be train, val or test, got {split!r}')
    meta = os.path.join(root, 'metadata', 'UrbanSound8K.csv')
    if not os.path.exists(meta):
        raise DatasetError(f'{root}: no metadata/UrbanSound8K.csv')
    clips, labels = [], []
    with open(meta, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            try:
                fold, cls = int(row['fold']), int(row['classID'])
            except (KeyError, ValueError):
                raise DatasetError(f'{meta}: rows need integer fold and classID') from None
            if fold not in FOLDS[split]:
                continue
            if not 0 <= cls < len(CLASSES):
                raise DatasetError(f'{meta}: classID {cls} outside 0..{len(CLASSES) - 1}')
            path = os.path.join(root, 'audio', f'fold{fold}', row['slice_file_name'])
            import librosa
            try:
                x, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
            except Exception as e:
                raise DatasetError(f'cannot read {path}: {e}') from None
            clips.append(fit_clip(x).astype(np.float32))
            labels.append(cls)
    if not clips:
        raise DatasetError(f'{root}: no clips in folds {sorted(FOLDS[split])}')
    return {'audio': np.stack(clips), 'labels': np.asarray(labels, np.int64)}
