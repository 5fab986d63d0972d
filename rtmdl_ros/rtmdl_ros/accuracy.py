"""`rtmdl accuracy`: measure each variant of a user family on a labelled folder.

Classifiers: top-1 on an image-classification folder (one subfolder per
label). Detectors: mAP@0.5 on a YOLO txt set. Every image goes through the very
segments the executor runs (declared pre-processing, the ONNX file,
declared post-processing). The measured accuracies replace the declared ones
(written atomically, the previous file kept as FILE.bak) where the family is
declared: in the task set under tasks.<task>.model.variants.<v>.accuracy, or in
the family.yaml of a folder the task names (rtmdl train), with
accuracy_measured saying how; `rtmdl optimize` names the source in the plan's header.
"""
from __future__ import annotations

import datetime
import os

import numpy as np
import yaml

from .core.files import atomic_write
from .core.taskset import TasksetError, read_yaml


def measure(fam, samples, backend, progress=None) -> dict[str, float]:
    """Accuracy per variant of `fam` on decoded samples."""
    from .models.detection import mean_average_precision
    from .models.jobs import make_segments, raw_decoder
    segments = make_segments(fam, backend, fam.labels, raw_decoder(fam))
    out = {}
    for v in fam.variants:
        if fam.kind == 'classify':
            hits = 0
            for img, label in samples:
                result = segments.post(segments.infer(v, 0, segments.pre(img, v)), img, v)
                hits += int(result.labels[0][1] == label)
            out[v] = hits / len(samples)
        else:
            preds, truths = [], []
            for img, boxes, classes in samples:
                dets = segments.post(segments.infer(v, 0, segments.pre(img, v)), img, v).detections
                preds.append((np.array([d[3] for d in dets], np.float32).reshape(-1, 4),
                              np.array([d[2] for d in dets], np.float32), np.array([d[1] for d in dets], np.int64)))
                truths.append((boxes, classes))
            out[v] = mean_average_precision(preds, truths, len(fam.labels), 0.5)
        if progress is not None:
            progress(v, out[v])
    return out


def accuracy(taskset_file: str, task: str, data_dir: str, backend_name: str = 'onnxruntime', device: str = 'cpu',
             progress=None) -> tuple[dict[str, float], str, int]:
    """Measure and write back; returns (accuracy per variant, metric name, images)."""
    from .backends import create
    from .data.labelled import classification_folder, yolo_folder
    from .models import IMAGE
    from .models.catalog import family_file, read_task_requirements, task_families
    from .models.jobs import limit_library_threads
    raw = read_task_requirements(taskset_file)
    families = task_families(raw, taskset_file)
    if task not in families:
        raise TasksetError(f'task set {taskset_file}: no task {task!r}; it has {sorted(families)}')
    fam = families[task]
    if not getattr(fam, 'user', False):
        raise TasksetError(f'task set {taskset_file}: tasks.{task} runs the zoo family {fam.task!r}, whose accuracy '
                           'per variant comes from its test split (docs/zoo.md)')
    if fam.input != IMAGE:
        raise TasksetError(f'tasks.{task}: rtmdl accuracy measures image models (classifier or detector)')
    limit_library_threads()
    samples = classification_folder(data_dir, fam.labels) if fam.kind == 'classify' else \
        yolo_folder(data_dir, len(fam.labels))
    measured = measure(fam, samples, create(backend_name, device), progress)
    metric = 'top-1' if fam.kind == 'classify' else 'mAP@0.5'
    # Rewrite the file that declares the family, which profile and the optimizer read (YAML
    # comments are not kept: the previous file stays beside it as FILE.bak).
    declared = family_file(raw['tasks'][task].get('model'), os.path.dirname(os.path.abspath(taskset_file)))
    target = declared or taskset_file
    doc = read_yaml(target, 'family' if declared else 'task set')
    with open(target, encoding='utf-8') as f:
        previous = f.read()
    atomic_write(target + '.bak', lambda f: f.write(previous))
    model = doc if declared else doc['tasks'][task]['model']
    for v, value in measured.items():
        model['variants'][v]['accuracy'] = round(float(value), 4)
    model['accuracy_measured'] = {
        'metric': metric, 'data': os.path.abspath(data_dir), 'images': len(samples),
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
    atomic_write(target, lambda f: yaml.safe_dump(doc, f, sort_keys=False, width=160))
    read_task_requirements(taskset_file)                     # what we wrote must still be valid
    return measured, metric, len(samples), target
