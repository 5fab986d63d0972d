"""Train a supernet so that every width x depth variant is good.

Sandwich rule: each step trains the largest variant, the smallest and two
random ones on the same batch. Classifiers use in-place distillation (the
sub-networks learn the largest variant's soft predictions, detached); the
detector trains every variant on the ground truth. After training, each
variant's batch-norm statistics are recalibrated on training data, since a
sliced sub-network sees other activations than the one it trained beside.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import detection
from .families import Family, family
from .supernet import SlimConv, SuperNet


@dataclass
class Split:
    x: torch.Tensor             # uint8 images (N x 3 x H x W) or float features
    y: torch.Tensor             # labels N, or detection targets N x 6 x gh x gw
    truths: list | None = None  # detection: per image (boxes, classes) for mAP
    digest: str | None = None   # content hash of the examples (data/cache.split_digest), where known

    def __len__(self) -> int:
        return len(self.x)

    def inputs(self, idx) -> torch.Tensor:
        x = self.x[idx]
        return x.float() * (2.0 / 255.0) - 1.0 if x.dtype == torch.uint8 else x


def as_split(d: dict) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(d['x'])), torch.from_numpy(np.ascontiguousarray(d['y'])),
                 d.get('truths'), d.get('digest'))


def load_data(fam: Family, split: str, seed: int = 0, size: int | None = None,
              data_root: str | None = None) -> Split:
    """A split of a built-in family's data set as network inputs and targets: the
    synthetic one, or the real one under data_root (GTSRB, UrbanSound8K)."""
    return as_split(fam.data(split, seed, size, data_root))


def build(arch: dict, kind: str, n_labels: int, variants=None) -> SuperNet:
    outputs = n_labels if kind == 'classify' else detection.outputs(n_labels)
    return SuperNet(**arch, outputs=outputs, head='classify' if kind == 'classify' else 'grid', variants=variants)


def detection_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    obj_t = target[:, 0]
    pos = obj_t > 0.5
    # Lights fill a few cells of each map: weigh the positives up.
    loss = F.binary_cross_entropy_with_logits(out[:, 0], obj_t, pos_weight=torch.tensor(8.0))
    if pos.any():
        o = out.permute(0, 2, 3, 1)[pos]
        t = target.permute(0, 2, 3, 1)[pos]
        loss = loss + F.l1_loss(torch.sigmoid(o[:, 1:3]), t[:, 1:3]) * 2.0
        loss = loss + F.l1_loss(o[:, 3:5], t[:, 3:5])
        loss = loss + F.cross_entropy(o[:, detection.BOX_CHANNELS:], t[:, 5].long())
    return loss


def _step_variants(net: SuperNet, rng: random.Random) -> list[int]:
    """Sandwich: largest, smallest and two others (indices into net.variants)."""
    largest = max(range(len(net.variants)), key=lambda i: (net.variants[i].width, net.variants[i].depth))
    smallest = min(range(len(net.variants)), key=lambda i: (net.variants[i].width, net.variants[i].depth))
    middle = [i for i in range(len(net.variants)) if i not in (largest, smallest)]
    return [largest, smallest, *rng.sample(middle, min(2, len(middle)))]


def recalibrate_bn(net: SuperNet, data: Split, batches: int = 20, batch_size: int = 64) -> None:
    """Fresh batch-norm statistics for every variant from training batches."""
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(data), generator=gen)[:batches * batch_size]
    convs = [m for m in net.modules() if isinstance(m, SlimConv)]
    net.train()
    with torch.no_grad():
        for v in range(len(net.variants)):
            for conv in convs:
                conv.bns[v].reset_running_stats()
                conv.bns[v].momentum = None          # cumulative average over the batches
            for k in range(0, len(idx), batch_size):
                net(data.inputs(idx[k:k + batch_size]), v)
            for conv in convs:
                conv.bns[v].momentum = 0.1
    net.eval()


def evaluate(net: SuperNet, kind: str, data: Split, variant: str, batch_size: int = 128) -> float:
    """Accuracy (classifiers) or mAP@0.5 (detector) of one variant."""
    net.eval()
    outs = []
    with torch.no_grad():
        for k in range(0, len(data), batch_size):
            outs.append(net(data.inputs(slice(k, k + batch_size)), variant))
    out = torch.cat(outs).numpy() if outs else np.zeros((0,))
    if kind == 'classify':
        return float((out.argmax(axis=1) == data.y.numpy()).mean()) if len(out) else 0.0
    preds = [detection.decode(o, score_threshold=0.05) for o in out]
    return detection.mean_average_precision(preds, data.truths, (out.shape[1] - detection.BOX_CHANNELS))


def fit(net: SuperNet, kind: str, train_set: Split, epochs: int, seed: int = 0, batch_size: int = 64,
        lr: float = 3e-3, mirror: bool = False, progress: bool = True, desc: str = 'train') -> float:
    """Train every variant of `net` together (sandwich rule); returns seconds taken.
    The caller seeds torch (before building `net`); `seed` drives the variant draws."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train_set) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps), pct_start=0.15)
    start = time.monotonic()
    bar = tqdm(total=steps, desc=desc, unit='step', disable=None if progress else True)  # None: terminals only
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train_set))
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            x, y = train_set.inputs(idx), train_set.y[idx]
            if mirror and rng.random() < 0.5:
                x = x.flip(3)
                if kind == 'detect':                    # mirror the grid and the centres within cells
                    y = y.flip(3).clone()
                    y[:, 1] = torch.where(y[:, 0] > 0.5, 1.0 - y[:, 1], y[:, 1])
            opt.zero_grad(set_to_none=True)
            teacher = None
            for v in _step_variants(net, rng):
                out = net(x, v)
                if kind == 'detect':
                    loss = detection_loss(out, y)
                elif teacher is None:
                    loss = F.cross_entropy(out, y, label_smoothing=0.1)
                    teacher = F.softmax(out.detach(), dim=1)
                else:
                    loss = F.kl_div(F.log_softmax(out, dim=1), teacher, reduction='batchmean')
                loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f'{loss.item():.3f}')
    bar.close()
    recalibrate_bn(net, train_set)
    return time.monotonic() - start


def train(task: str, epochs: int, seed: int = 0, batch_size: int = 64, lr: float = 3e-3,
          data_size: int | None = None, progress: bool = True,
          data_root: str | None = None) -> tuple[SuperNet, dict]:
    """Train one built-in family's supernet; returns it with per-variant test metrics."""
    fam = family(task)
    torch.manual_seed(seed)
    raw_train = fam.data('train', 0, data_size, data_root)
    train_set = as_split(raw_train)
    test_set = load_data(fam, 'test', 0, None if data_size is None else max(16, data_size // 4), data_root)
    labels = tuple(raw_train['labels'])
    net = build(fam.arch, fam.kind, len(labels))
    train_s = fit(net, fam.kind, train_set, epochs, seed, batch_size, lr, fam.mirror, progress, f'train {task}')
    metrics = {s.name: evaluate(net, fam.kind, test_set, s.name) for s in net.variants}
    return net, {'test_metric': metrics, 'test_split': test_set.digest, 'train_s': train_s, 'labels': list(labels),
                 'data': data_root or 'synthetic',
                 'metric': 'accuracy' if fam.kind == 'classify' else 'mAP@0.5'}
