"""Weight-shared supernets: width x depth variants of one residual CNN.

A variant is a sub-network: every convolution uses the first `width` share of
its output channels (its input channels follow from the layer before), and each
stage runs its first `depth` blocks (the rest are residual blocks, skipped as
identity). All variants read the same weight tensors through slices, so the
supernet stores them once. Batch-norm statistics and affine parameters are kept
per variant, because a slice sees different activations in each sub-network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (0.25, 0.5, 0.75, 1.0)
DEPTHS = (1, 2, 3)


@dataclass(frozen=True)
class VariantSpec:
    width: float
    depth: int

    @property
    def name(self) -> str:
        return f'w{round(self.width * 100):03d}_d{self.depth}'

    @classmethod
    def parse(cls, name: str) -> 'VariantSpec':
        try:
            w, d = name.split('_')
            spec = cls(int(w[1:]) / 100.0, int(d[1:]))
        except (ValueError, IndexError):
            raise ValueError(f'variant names look like w050_d2, got {name!r}') from None
        return spec


def all_variants(widths=WIDTHS, depths=DEPTHS) -> list[VariantSpec]:
    """Smallest first: by depth within width."""
    return [VariantSpec(w, d) for w in widths for d in depths]


MIN_CHANNELS = 8


def channels(full: int, width: float) -> int:
    """Channels of a layer at a width; like MobileNet, never fewer than 8 (narrower
    layers lose accuracy much faster than they save time)."""
    return min(full, max(MIN_CHANNELS, int(math.ceil(full * width))))


class SlimConv(nn.Module):
    """Conv + per-variant batch norm; output channels sliced to the active width."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, n_variants: int, widths_out: list[int]):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in widths_out)
        self.widths_out = widths_out
        self.stride = stride
        self.pad = k // 2

    def forward(self, x: torch.Tensor, v: int) -> torch.Tensor:
        c_out = self.widths_out[v]
        w = self.conv.weight[:c_out, :x.shape[1]]          # a view: no copy of the weights
        return self.bns[v](F.conv2d(x, w, None, self.stride, self.pad))


class Block(nn.Module):
    """Residual basic block (two 3x3 convs); the first of a stage may downsample."""

    def __init__(self, c_in: int, c_out: int, stride: int, variants: list[VariantSpec]):
        super().__init__()
        n = len(variants)
        self.conv1 = SlimConv(c_in, c_out, 3, stride, n, [channels(c_out, s.width) for s in variants])
        self.conv2 = SlimConv(c_out, c_out, 3, 1, n, [channels(c_out, s.width) for s in variants])
        self.shortcut = (SlimConv(c_in, c_out, 1, stride, n, [channels(c_out, s.width) for s in variants])
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor, v: int) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x, v)), v)
        s = x if self.shortcut is None else self.shortcut(x, v)
        return F.relu(y + s)


class SuperNet(nn.Module):
    """Stem, stages of residual blocks, and a task head over the last feature map.

    head='classify': global average pool and a linear layer to `outputs` logits.
    head='grid': a 1x1 conv to `outputs` channels per cell of the last map.
    """

    def __init__(self, in_channels: int, stem: int, stages: list[tuple[int, int]], outputs: int,
                 head: str = 'classify', stem_kernel: int = 3, stem_stride: int = 1,
                 variants: list[VariantSpec] | None = None):
        super().__init__()
        self.variants = variants or all_variants()
        self.index = {s.name: i for i, s in enumerate(self.variants)}
        self.config = dict(in_channels=in_channels, stem=stem, stages=[list(s) for s in stages], outputs=outputs,
                           head=head, stem_kernel=stem_kernel, stem_stride=stem_stride,
                           variants=[s.name for s in self.variants])
        n = len(self.variants)
        self.stem = SlimConv(in_channels, stem, stem_kernel, stem_stride, n,
                             [channels(stem, s.width) for s in self.variants])
        self.max_depth = max(s.depth for s in self.variants)
        self.stages = nn.ModuleList()
        c_in = stem
        for c_out, stride in stages:
            self.stages.append(nn.ModuleList(
                Block(c_in if b == 0 else c_out, c_out, stride if b == 0 else 1, self.variants)
                for b in range(self.max_depth)))
            c_in = c_out
        self.head_kind = head
        if head == 'classify':
            self.head = nn.Linear(c_in, outputs)
        elif head == 'grid':
            self.head = nn.Conv2d(c_in, outputs, 1)
        else:
            raise ValueError(f'unknown head {head!r}')

    def forward(self, x: torch.Tensor, variant: str | int) -> torch.Tensor:
        v = self.index[variant] if isinstance(variant, str) else variant
        spec = self.variants[v]
        x = F.relu(self.stem(x, v))
        for stage in self.stages:
            for block in stage[:spec.depth]:
                x = block(x, v)
        c = x.shape[1]
        if self.head_kind == 'classify':
            return F.linear(x.mean(dim=(2, 3)), self.head.weight[:, :c], self.head.bias)
        return F.conv2d(x, self.head.weight[:, :c], self.head.bias)

    def variant_parameters(self, variant: str) -> int:
        """Parameters (and BN buffers) a stand-alone copy of one variant holds."""
        v = self.index[variant]
        spec = self.variants[v]
        total = 0
        c_in = self.config['in_channels']

        def conv(sc: SlimConv, c_in: int) -> tuple[int, int]:
            c_out = sc.widths_out[v]
            k = sc.conv.kernel_size[0]
            return c_out * c_in * k * k + 4 * c_out, c_out     # weight + BN weight, bias, mean, var
        n, c_in = conv(self.stem, c_in)
        total += n
        for stage in self.stages:
            for block in stage[:spec.depth]:
                n1, c_mid = conv(block.conv1, c_in)
                n2, c_out = conv(block.conv2, c_mid)
                total += n1 + n2
                if block.shortcut is not None:
                    total += conv(block.shortcut, c_in)[0]
                c_in = c_out
        total += self.head.weight.shape[0] * c_in + self.head.bias.numel()
        return total


class VariantView(nn.Module):
    """One variant as a module of its own (for inference and ONNX export).

    It holds a reference to the supernet, not a copy: the weights stay shared.
    """

    def __init__(self, supernet: SuperNet, variant: str):
        super().__init__()
        if variant not in supernet.index:
            raise KeyError(f'unknown variant {variant!r}; the supernet has {sorted(supernet.index)}')
        self.supernet = supernet
        self.variant = variant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.variant)
