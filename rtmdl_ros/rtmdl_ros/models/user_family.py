"""A user's own model family, declared in the task set: ONNX variant files plus
declared pre- and post-processing blocks (models/blocks.py).

    model:
      input: image                      # or sound (AudioChunk)
      labels: [person, bicycle]         # or labels_file: labels.txt (one per line)
      weight_group: person              # optional: the variants share weights (stored once)
      variants:
        n: {onnx: models/person_n.onnx, accuracy: 0.61}
        s: {onnx: models/person_s.onnx, accuracy: 0.68}
      pre: {resize: [640, 640], mode: letterbox, colour: rgb}
      post: {format: yolov8, score_threshold: 0.25}

Paths are relative to the task set file. Everything is checked when the task
set is read, before any node starts: the files exist and parse as ONNX, the
input shape matches the declared pre-processing, and the output's class count
matches the labels. Errors name the file and the key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..core.taskset import TasksetError
from . import IMAGE, INPUT_KINDS, SOUND
from .blocks import ImagePre, LogMelPre, Post

KEYS = {'input', 'labels', 'labels_file', 'weight_group', 'variants', 'pre', 'post', 'accuracy_measured',
        'trained'}      # trained: how `rtmdl train` made the family (informational)


@dataclass(frozen=True)
class UserFamily:
    task: str
    input: str                       # IMAGE or SOUND
    labels: tuple[str, ...]
    pre: ImagePre | LogMelPre
    post: Post
    variants: dict = field(default_factory=dict)   # name -> {'onnx': path, 'accuracy': float, 'storage_mb': float}
    weight_group: str | None = None
    uses_roi: bool = False           # a fixed crop is part of `pre`
    user: bool = True

    @property
    def kind(self) -> str:
        return self.post.kind

    @property
    def window_s(self) -> float:
        """SOUND: seconds of sound one job carries (the clip the log-mel front end reads)."""
        return getattr(self.pre, 'clip_s', 0.0)

    # The image interface the zoo's families have too (models/picture.py); a user's crop is fixed in `pre`.
    @property
    def default_roi(self) -> None:
        return None

    @property
    def picture_size(self) -> tuple[int, int]:
        return self.pre.picture_size

    def encode(self, frame, roi=None):
        return self.pre.encode(frame)

    def tensor(self, picture, *args):
        return self.pre.tensor(picture) if self.input == IMAGE else self.pre(picture, *args)[0]

    def preprocess(self, payload, *args):
        return self.pre(payload, *args)[0]


def _onnx_shapes(path: str, where: str) -> tuple[list, list]:
    """(first input's dims, first output's dims) of an ONNX file; str/None for dynamic dims."""
    import onnx
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:                          # truncated, not protobuf, ...
        raise TasksetError(f'{where}: {path} is not a readable ONNX model ({type(e).__name__}: {e})') from None
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if not inputs or not model.graph.output:
        raise TasksetError(f'{where}: {path} has no input or no output')

    def dims(value):
        return [d.dim_value if d.HasField('dim_value') else (d.dim_param or None)
                for d in value.type.tensor_type.shape.dim]
    return dims(inputs[0]), dims(model.graph.output[0])


def _labels(spec: dict, base_dir: str, where: str) -> tuple[str, ...]:
    if 'labels' in spec:
        labels = spec['labels']
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            raise TasksetError(f'{where}.labels: expected a non-empty list of names')
        return tuple(labels)
    if 'labels_file' in spec:
        path = os.path.join(base_dir, str(spec['labels_file']))
        try:
            with open(path, encoding='utf-8') as f:
                labels = [line.strip() for line in f if line.strip()]
        except OSError as e:
            raise TasksetError(f'{where}.labels_file: {path}: {e.strerror}') from None
        if not labels:
            raise TasksetError(f'{where}.labels_file: {path} holds no labels')
        return tuple(labels)
    raise TasksetError(f'{where}: needs labels (a list) or labels_file')


def _matches(declared, actual) -> bool:
    return len(declared) == len(actual) and all(not isinstance(a, int) or a in (0, d) for d, a in zip(declared, actual))


def user_family(task: str, spec: dict, base_dir: str, where: str) -> UserFamily:
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise TasksetError(f'{where}: unknown keys {unknown}; known: {sorted(KEYS)}')
    kind = spec.get('input', IMAGE)
    if kind not in INPUT_KINDS:
        raise TasksetError(f"{where}.input: must be one of {list(INPUT_KINDS)}, got {kind!r}")
    labels = _labels(spec, base_dir, where)
    try:
        pre = (ImagePre if kind == IMAGE else LogMelPre).from_spec(spec.get('pre'), f'{where}.pre')
        post = Post.from_spec(spec.get('post'), f'{where}.post')
    except ValueError as e:
        raise TasksetError(str(e)) from None
    if kind == SOUND and post.kind == 'detect':
        raise TasksetError(f'{where}.post.format: a sound model is a classifier, got {post.format!r}')
    variants_spec = spec.get('variants')
    if not isinstance(variants_spec, dict) or not variants_spec:
        raise TasksetError(f'{where}.variants: expected a mapping name -> {{onnx: FILE, accuracy: A}}')
    group = spec.get('weight_group')
    if group is not None and not isinstance(group, str):
        raise TasksetError(f'{where}.weight_group: expected a name, got {group!r}')
    variants = {}
    for name, v in variants_spec.items():
        w = f'{where}.variants.{name}'
        if not isinstance(v, dict) or not isinstance(v.get('onnx'), str):
            raise TasksetError(f'{w}: expected {{onnx: FILE, accuracy: A}}')
        extra = sorted(set(v) - {'onnx', 'accuracy'})
        if extra:
            raise TasksetError(f'{w}: unknown keys {extra}; known: [accuracy, onnx]')
        acc = v.get('accuracy')
        if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
            raise TasksetError(f'{w}.accuracy: a fraction in [0, 1] is required (declared, or from rtmdl accuracy), '
                               f'got {acc!r}')
        path = os.path.normpath(os.path.join(base_dir, v['onnx']))
        if not os.path.isfile(path):
            raise TasksetError(f'{w}.onnx: {path}: no such file')
        ins, outs = _onnx_shapes(path, f'{w}.onnx')
        if not _matches(pre.input_shape, ins):
            key = where.rsplit(': ', 1)[-1]              # the key alone, the file is named already
            raise TasksetError(f'{w}.onnx: {path} takes input {ins}, but {key}.pre makes {list(pre.input_shape)}')
        try:
            classes = post.classes_in(outs)
        except ValueError as e:
            raise TasksetError(f'{w}.onnx: {path}: {e}') from None
        if classes is not None and classes != len(labels):
            raise TasksetError(f'{w}.onnx: {path} outputs {outs}, i.e. {classes} classes, but there are '
                               f'{len(labels)} labels')
        variants[str(name)] = {'onnx': path, 'accuracy': float(acc), 'storage_mb': os.path.getsize(path) / float(1 << 20)}
    return UserFamily(task, kind, labels, pre, post, variants, group)
