"""Loader for the real GTSRB data set, for users who have it on disk.

Two layouts are read, as distributed:
  official:  ROOT/Final_Training/Images/NNNNN/GT-NNNNN.csv (+ .ppm files) and
             ROOT/Final_Test/Images/GT-final_test.csv (+ .ppm files); CSVs are
             ';'-separated: Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId
  kaggle:    ROOT/Train.csv and ROOT/Test.csv (','-separated, same columns plus
             Path, relative to ROOT).
Each sign is cropped to its ROI and resized to the network's input size.
Validation is a fixed, seeded share of the training set.
"""
from __future__ import annotations

import csv
import glob
import os

import cv2
import numpy as np

from . import DatasetError
from .signs import SIZE

NAMES = ('speed_20', 'speed_30', 'speed_50', 'speed_60', 'speed_70', 'speed_80', 'end_speed_80', 'speed_100',
         'speed_120', 'no_passing', 'no_passing_trucks', 'right_of_way_next', 'priority_road', 'yield', 'stop',
         'no_vehicles', 'no_trucks', 'no_entry', 'general_caution', 'curve_left', 'curve_right', 'double_curve',
         'bumpy_road', 'slippery_road', 'road_narrows', 'road_work', 'traffic_signals', 'pedestrians',
         'children_crossing', 'bicycles_crossing', 'ice_snow', 'wild_animals', 'end_limits', 'turn_right',
         'turn_left', 'ahead_only', 'straight_or_right', 'straight_or_left', 'keep_right', 'keep_left',
         'roundabout', 'end_no_passing', 'end_no_passing_trucks')


def _rows(path: str, delimiter: str) -> list[dict]:
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _crop(path: str, row: dict) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f'cannot read image {path}')
    x0, y0, x1, y1 = (int(row[k]) for k in ('Roi.X1', 'Roi.Y1', 'Roi.X2', 'Roi.Y2'))
    crop = img[max(0, y0):y1 + 1, max(0, x0):x1 + 1]
    if crop.size == 0:
        crop = img
    return cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def _entries(root: str, part: str) -> list[tuple[str, dict]]:
    """(image path, CSV row) for 'train' or 'test' in whichever layout ROOT has."""
    kaggle = os.path.join(root, 'Train.csv' if part == 'train' else 'Test.csv')
    if os.path.exists(kaggle):
        return [(os.path.join(root, r['Path']), r) for r in _rows(kaggle, ',')]
    if part == 'train':
        csvs = sorted(glob.glob(os.path.join(root, 'Final_Training', 'Images', '*', 'GT-*.csv')))
        return [(os.path.join(os.path.dirname(c), r['Filename']), r) for c in csvs for r in _rows(c, ';')]
    test_csv = os.path.join(root, 'Final_Test', 'Images', 'GT-final_test.csv')
    if os.path.exists(test_csv):
        return [(os.path.join(os.path.dirname(test_csv), r['Filename']), r) for r in _rows(test_csv, ';')]
    return []


def load(root: str, split: str, val_share: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """images (N x SIZE x SIZE x 3 bgr8) and labels (GTSRB ClassId) of a split."""
    if split not in ('train', 'val', 'test'):
        raise DatasetError(f'split must be train, val or test, got {split!r}')
    entries = _entries(root, 'test' if split == 'test' else 'train')
    if not entries:
        raise DatasetError(f'{root}: no GTSRB {"test" if split == "test" else "training"} CSV found '
                           '(expected Final_Training/Images/*/GT-*.csv or Train.csv)')
    if split != 'test':
        order = np.random.default_rng(seed).permutation(len(entries))
        n_val = max(1, int(round(len(entries) * val_share)))
        keep = order[:n_val] if split == 'val' else order[n_val:]
        entries = [entries[i] for i in sorted(keep)]
    try:
        labels = np.array([int(r['ClassId']) for _, r in entries], np.int64)
    except (KeyError, ValueError):
        raise DatasetError(f'{root}: CSV rows need an integer ClassId') from None
    if labels.size and (labels.min() < 0 or labels.max() >= len(NAMES)):
        raise DatasetError(f'{root}: ClassId outside 0..{len(NAMES) - 1}')
    images = np.stack([_crop(p, r) for p, r in entries])
    return {'images': images, 'labels': labels}
