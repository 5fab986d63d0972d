"""The three F1/10 model families: architecture, labels, pre- and post-processing.

Pre-processing (CPU) turns a sensor message's payload into the network input;
post-processing (CPU) turns the network output into labelled results. For a
camera, pre-processing is encode (crop and scale the frame to the model's
picture: the task node runs it) then tensor (the executor's pre segment runs
it); see models/picture.py. Profiling and the runtime call exactly these functions.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable, Generator

import cv2
import numpy as np

from ..data import DatasetError, drive, gtsrb, lights, signs, sounds, urbansound
from ..data.cache import split_digest
from . import IMAGE, SAMPLE_RATES_HZ, SOUND, InputError, detection  # noqa: F401  (InputError is re-exported)
from .picture import Placement, roi_pixels


@dataclass(frozen=True)
class Family:
    task: str                       # task name in task sets and plans
    kind: str                       # 'classify' or 'detect'
    labels: tuple[str, ...]
    input_shape: tuple[int, int, int]
    arch: dict                      # SuperNet keyword arguments (without outputs/head)
    tensor: Callable[..., np.ndarray]   # IMAGE: picture -> input; SOUND: (samples, rate) -> input
    postprocess: Callable[..., object]  # classify: (logits, labels, top_k); detect: (raw, Placement, score_threshold)
    encode: Callable[..., tuple] | None = None   # IMAGE: (frame, roi) -> (picture, Placement)
    # tensor as a generator that yields between steps (core/runtime.py: with one CPU worker a
    # more urgent segment may take over there) and returns the input; None: one step.
    tensor_steps: Callable[..., Generator] | None = None
    input: str = IMAGE              # what the task consumes: IMAGE (camera) or SOUND (microphone)
    uses_roi: bool = False          # pre-processing crops a region of interest of the frame
    default_roi: tuple = (0.0, 0.0, 1.0, 1.0)   # where that region is unless the task node's roi says
    window_s: float = 0.0           # SOUND: seconds of sound one job carries
    # Training (models/train.py): data(split, seed, size, data_root) -> {'x', 'y', 'truths', 'labels',
    # 'digest' (of the examples as the data set holds them)},
    # the shipped zoo's epochs, and whether a mirrored input is a valid example.
    data: Callable[..., dict] | None = None
    epochs: int = 10
    mirror: bool = False

    @property
    def outputs(self) -> int:
        return len(self.labels) if self.kind == 'classify' else detection.outputs(len(self.labels))

    @property
    def picture_size(self) -> tuple[int, int]:
        """IMAGE: (width, height) of the picture encode makes."""
        return self.input_shape[2], self.input_shape[1]

    def preprocess(self, payload, *args) -> np.ndarray:
        """The whole pre-processing of one input: a frame (and a roi) or (samples, rate)."""
        if self.input == SOUND:
            return self.tensor(payload, *args)
        return self.tensor(self.encode(payload, args[0] if args else self.default_roi)[0])


# --------------------------------------------------------------------------- images

def check_image(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f'expected an H x W x 3 uint8 bgr image, got '
                         f'{getattr(frame, "shape", None)} {getattr(frame, "dtype", type(frame).__name__)}')
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InputError(f'image of {frame.shape[1]}x{frame.shape[0]} pixels is too small')


def picture_tensor(img: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 bgr picture -> float32 1 x 3 x H x W in [-1, 1]."""
    x = img.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def sign_encode(frame: np.ndarray, roi: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)):
    """Crop the region of interest (fractions x0, y0, x1, y1 of the frame) to a sign crop."""
    check_image(frame)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = roi_pixels(roi, w, h, min_side=4)
    crop = cv2.resize(frame[y0:y1, x0:x1], (signs.SIZE, signs.SIZE), interpolation=cv2.INTER_AREA)
    return crop, Placement((x1 - x0) / signs.SIZE, (y1 - y0) / signs.SIZE, x0, y0, w, h)


def light_encode(frame: np.ndarray, roi=None):
    """The whole frame at the detector's input size (the detector takes no region of interest)."""
    check_image(frame)
    h, w = frame.shape[:2]
    picture = cv2.resize(frame, (lights.INPUT_W, lights.INPUT_H), interpolation=cv2.INTER_AREA)
    return picture, Placement(w / lights.INPUT_W, h / lights.INPUT_H, 0.0, 0.0, w, h)


def classify_post(logits: np.ndarray, labels: tuple[str, ...], top_k: int = 3) -> list[tuple[str, float]]:
    """Ranked (label, probability), best first."""
    z = np.asarray(logits, np.float64).reshape(-1)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p)[:top_k]
    return [(labels[i], float(p[i])) for i in order]


def light_post(raw: np.ndarray, place: Placement, score_threshold: float = 0.3):
    """Detections in source-frame pixels: list of (state, score, (x0, y0, x1, y1))."""
    boxes, scores, classes = detection.decode(np.asarray(raw)[0], score_threshold)
    return [(lights.STATES[c], float(s), tuple(float(v) for v in b))
            for b, s, c in zip(place.to_source(boxes), scores, classes)]


# --------------------------------------------------------------------------- audio

N_MELS, N_FFT, HOP = 64, 512, 256
STFT_BLOCK = 32                 # STFT frames per step of audio_pre_steps (about 0.4 ms each)
AUDIO_FRAMES = int(sounds.CLIP_S * sounds.SAMPLE_RATE) // HOP + 1


@functools.cache
def _mel_basis() -> np.ndarray:
    import librosa
    return librosa.filters.mel(sr=sounds.SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)


def timed_steps(steps: Generator) -> tuple:
    """Run a generator of steps to its end: (what it returns, its longest step in ms)."""
    longest = 0.0
    while True:
        t0 = time.perf_counter()
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value, max(longest, (time.perf_counter() - t0) * 1e3)
        longest = max(longest, (time.perf_counter() - t0) * 1e3)


def run_steps(steps: Generator):
    """Run a generator of steps to its end: what it returns."""
    return timed_steps(steps)[0]


def audio_pre(samples: np.ndarray, sample_rate: int = sounds.SAMPLE_RATE) -> np.ndarray:
    """The latest CLIP_S seconds of mono audio -> standardised log-mel, 1 x 1 x N_MELS x frames."""
    return run_steps(audio_pre_steps(samples, sample_rate))


def audio_pre_steps(samples: np.ndarray, sample_rate: int = sounds.SAMPLE_RATE) -> Generator:
    """audio_pre in steps (check and resample | the STFT in blocks of frames | mel, log,
    standardise): its longest step, not its whole length, is what it can keep a more
    urgent camera waiting (core/runtime.py)."""
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0 or not np.issubdtype(x.dtype, np.floating):
        raise InputError(f'expected mono float samples, got shape {x.shape} {x.dtype}')
    if not np.all(np.isfinite(x)):
        raise InputError('audio holds NaN or infinite samples')
    if not SAMPLE_RATES_HZ[0] <= sample_rate <= SAMPLE_RATES_HZ[1]:
        raise InputError(f'sample rate {sample_rate} Hz is out of range')
    if sample_rate != sounds.SAMPLE_RATE:
        from scipy.signal import resample_poly
        g = np.gcd(int(sample_rate), sounds.SAMPLE_RATE)
        x = resample_poly(x, sounds.SAMPLE_RATE // g, int(sample_rate) // g)
    n = int(sounds.CLIP_S * sounds.SAMPLE_RATE)
    x = x[-n:].astype(np.float32)
    if x.size < n:
        x = np.pad(x, (n - x.size, 0))
    import librosa                            # here: a vision-only machine need not have it
    yield
    # librosa.feature.melspectrogram's result (power 2), with the filter bank built once
    # (building it took ~40 % of each call). The STFT, most of the work, runs in blocks of
    # frames, a step each: frames are independent, so centring the clip once (librosa's
    # zero padding) and taking each block uncentred gives the same spectrogram, bit for bit.
    padded = np.pad(x, N_FFT // 2)
    frames = 1 + (padded.size - N_FFT) // HOP
    blocks = []
    for a in range(0, frames, STFT_BLOCK):
        b = min(frames, a + STFT_BLOCK)
        blocks.append(np.abs(librosa.stft(padded[a * HOP:(b - 1) * HOP + N_FFT], n_fft=N_FFT, hop_length=HOP,
                                          center=False)) ** 2)
        yield
    mel = _mel_basis() @ np.concatenate(blocks, axis=1)
    logmel = np.log(mel + 1e-6)
    logmel = (logmel - logmel.mean()) / (logmel.std() + 1e-6)     # gain-invariant
    return logmel[None, None].astype(np.float32)


# --------------------------------------------------------------------------- training data

def _nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def sign_data(split: str, seed: int = 0, size: int | None = None, data_root: str | None = None) -> dict:
    """Sign crops: the synthetic set, or GTSRB under data_root (its 43 classes)."""
    d = gtsrb.load(data_root, split) if data_root else signs.load_split(split, seed, size)
    return {'x': _nchw(d['images']), 'y': d['labels'], 'truths': None,
            'labels': gtsrb.NAMES if data_root else signs.CLASSES, 'digest': split_digest(d['images'], d['labels'])}


def light_data(split: str, seed: int = 0, size: int | None = None, data_root: str | None = None) -> dict:
    """Synthetic traffic-light scenes with grid targets and the boxes for mAP."""
    if data_root is not None:
        raise DatasetError('traffic_light: no real data set loader; train on the synthetic scenes')
    d = lights.load_split(split, seed, size)
    gh, gw = lights.INPUT_H // detection.STRIDE, lights.INPUT_W // detection.STRIDE
    targets = np.stack([detection.encode(b, s, gh, gw, len(lights.STATES)) for b, s in zip(d['boxes'], d['states'])])
    truths = [(b[s >= 0], s[s >= 0]) for b, s in zip(d['boxes'], d['states'])]
    return {'x': _nchw(d['images']), 'y': targets, 'truths': truths, 'labels': lights.STATES,
            'digest': split_digest(d['images'], d['boxes'], d['states'])}


def sound_data(split: str, seed: int = 0, size: int | None = None, data_root: str | None = None) -> dict:
    """Log-mel features of synthetic urban sounds, or of UrbanSound8K under data_root."""
    d = urbansound.load(data_root, split) if data_root else sounds.load_split(split, seed, size)
    feats = np.concatenate([audio_pre(a) for a in d['audio']]) if len(d['audio']) else \
        np.zeros((0, 1, N_MELS, AUDIO_FRAMES), np.float32)
    # The digest is of the clips, not of the features: a log-mel's last bits depend on BLAS threading.
    return {'x': feats, 'y': d['labels'], 'truths': None, 'labels': sounds.CLASSES,
            'digest': split_digest(d['audio'], d['labels'])}


FAMILIES: dict[str, Family] = {
    'sign': Family(
        task='sign', kind='classify', labels=signs.CLASSES, input_shape=(3, signs.SIZE, signs.SIZE),
        arch=dict(in_channels=3, stem=16, stages=[(24, 2), (48, 2), (64, 2)]),
        encode=sign_encode, tensor=picture_tensor, postprocess=classify_post, uses_roi=True,
        default_roi=drive.SIGN_ROI, data=sign_data, epochs=12),
    'traffic_light': Family(
        task='traffic_light', kind='detect', labels=lights.STATES, input_shape=(3, lights.INPUT_H, lights.INPUT_W),
        arch=dict(in_channels=3, stem=16, stem_stride=2, stages=[(32, 2), (48, 2), (64, 1)]),
        encode=light_encode, tensor=picture_tensor, postprocess=light_post, data=light_data, epochs=20, mirror=True),
    'audio': Family(
        task='audio', kind='classify', labels=sounds.CLASSES, input_shape=(1, N_MELS, AUDIO_FRAMES),
        arch=dict(in_channels=1, stem=16, stem_kernel=5, stem_stride=2, stages=[(24, 2), (48, 2), (64, 2)]),
        tensor=audio_pre, tensor_steps=audio_pre_steps, postprocess=classify_post, input=SOUND,
        window_s=sounds.CLIP_S, data=sound_data, epochs=15),
}


def family(task: str) -> Family:
    try:
        return FAMILIES[task]
    except KeyError:
        raise KeyError(f'unknown task {task!r}; the zoo has {sorted(FAMILIES)}') from None
