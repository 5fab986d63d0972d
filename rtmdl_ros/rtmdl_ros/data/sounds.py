"""Procedurally synthesised urban sounds with the ten UrbanSound8K classes.

Each class is built from how the sound is physically made (a siren's swept
tone, a horn's harmonic stack, an engine's firing pulses, a drill's motor whine,
a jackhammer's impacts, a shot's decaying blast, barks, children's voices,
street music, an air conditioner's fan and hum), with per-clip random
parameters, then placed in a clip of CLIP_S seconds at a random offset and
mixed with background noise (pink/brown noise, traffic rumble, distant voices)
at a random SNR. Mono float32 at SAMPLE_RATE.
"""
from __future__ import annotations

import numpy as np

from .cache import balanced_labels, cached_split

CLASSES = ('air_conditioner', 'car_horn', 'children_playing', 'dog_bark', 'drilling', 'engine_idling',
           'gun_shot', 'jackhammer', 'siren', 'street_music')
SAMPLE_RATE = 16000
CLIP_S = 2.0
SPLITS = {'train': (2400, 0), 'val': (400, 1), 'test': (800, 2)}


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _harmonics(f0: np.ndarray | float, n: int, count: int, rolloff: float, rng) -> np.ndarray:
    """A harmonic stack following the (possibly time-varying) fundamental f0."""
    f0 = np.broadcast_to(np.asarray(f0, np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, count + 1):
        if np.max(f0) * k >= SAMPLE_RATE / 2:
            break
        out += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** rolloff
    return out


def _envelope(n: int, attack_s: float, release_s: float) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack_s * SAMPLE_RATE)), max(1, int(release_s * SAMPLE_RATE))
    env[:a] = np.linspace(0, 1, a)[: n]
    env[-r:] *= np.linspace(1, 0, r)[-n:] if r <= n else 1
    return env


def _bandpass(x: np.ndarray, lo: float, hi: float, order: int = 2) -> np.ndarray:
    from scipy import signal                  # imported here: scipy.signal takes a second to load
    sos = signal.butter(order, [lo, min(hi, SAMPLE_RATE / 2 - 100)], btype='band', fs=SAMPLE_RATE, output='sos')
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, f: float, order: int = 2) -> np.ndarray:
    from scipy import signal
    return signal.sosfilt(signal.butter(order, f, fs=SAMPLE_RATE, output='sos'), x)


def _events(n: int, rng, count: tuple[int, int], length_s: tuple[float, float], make) -> np.ndarray:
    """Place `count` short events made by make(length) at random times."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(*count))):
        m = int(rng.uniform(*length_s) * SAMPLE_RATE)
        start = int(rng.integers(0, max(1, n - m)))
        out[start:start + m] += make(m)[: n - start]
    return out


def _voice(m: int, rng, f_lo: float, f_hi: float) -> np.ndarray:
    """A voiced syllable: glottal harmonics with pitch glide through two formants."""
    f0 = np.linspace(rng.uniform(f_lo, f_hi), rng.uniform(f_lo, f_hi), m) * (1 + 0.03 * np.sin(2 * np.pi * 5 * _t(m)))
    src = _harmonics(f0, m, 20, 1.0, rng)
    f1, f2 = rng.uniform(500, 1000), rng.uniform(1400, 2800)
    return (_bandpass(src, f1 * 0.7, f1 * 1.3) + 0.6 * _bandpass(src, f2 * 0.8, f2 * 1.2)) * _envelope(m, 0.02, 0.05)


def synth(cls: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The foreground sound of class `cls`, n samples, peak-normalised."""
    name, t = CLASSES[cls], _t(n)
    if name == 'air_conditioner':
        hum = _harmonics(rng.choice([50.0, 60.0]), n, 6, 1.5, rng)
        blade = _harmonics(rng.uniform(80, 300), n, 4, 1.0, rng) * 0.3
        x = _lowpass(rng.normal(0, 1, n), rng.uniform(400, 1500)) * 2 + 0.3 * hum + blade
    elif name == 'car_horn':
        def honk(m):
            f = rng.uniform(330, 520)
            tone = _harmonics(f, m, 12, 0.7, rng) + _harmonics(f * rng.choice([1.19, 1.26]), m, 12, 0.7, rng)
            return np.tanh(1.5 * tone) * _envelope(m, 0.01, 0.03)
        x = _events(n, rng, (1, 3), (0.25, 1.2), honk)
    elif name == 'children_playing':
        x = _events(n, rng, (6, 14), (0.08, 0.35), lambda m: _voice(m, rng, 260, 520))
        x += 0.2 * _bandpass(rng.normal(0, 1, n), 300, 3000)
    elif name == 'dog_bark':
        def bark(m):
            f0 = np.linspace(rng.uniform(450, 800), rng.uniform(250, 400), m)
            tone = _harmonics(f0, m, 10, 0.8, rng) + 0.5 * _bandpass(rng.normal(0, 1, m), 500, 3000)
            return tone * np.exp(-_t(m) * rng.uniform(8, 20)) * _envelope(m, 0.005, 0.02)
        x = _events(n, rng, (1, 5), (0.12, 0.3), bark)
    elif name == 'drilling':
        f = rng.uniform(800, 2400) * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
        whine = _harmonics(f, n, 6, 0.6, rng) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(20, 60) * t))
        x = whine + 0.4 * _bandpass(rng.normal(0, 1, n), 1500, 6000)
        gate = np.ones(n)
        if rng.random() < 0.5:                                 # trigger released for a moment
            s = int(rng.integers(0, n // 2))
            gate[s:s + int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)] = 0.05
        x *= _lowpass(gate, 30)
    elif name == 'engine_idling':
        rate = rng.uniform(18, 45)                              # firing frequency
        pulses = (np.sin(2 * np.pi * np.cumsum(np.full(n, rate)) / SAMPLE_RATE) > 0.7).astype(float)
        x = _lowpass(pulses + 0.3 * rng.normal(0, 1, n), rng.uniform(200, 600), 4)
        x *= 1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
    elif name == 'gun_shot':
        def shot(m):
            tt = _t(m)
            blast = rng.normal(0, 1, m) * np.exp(-tt * rng.uniform(15, 40))
            tail = _lowpass(rng.normal(0, 1, m), 800) * np.exp(-tt * rng.uniform(3, 8)) * 0.5
            return blast + tail
        x = _events(n, rng, (1, 4), (0.3, 0.8), shot)
    elif name == 'jackhammer':
        rate = rng.uniform(12, 25)
        x = np.zeros(n)
        hit = int(0.03 * SAMPLE_RATE)
        ring = rng.normal(0, 1, hit) * np.exp(-_t(hit) * 150) + 0.5 * np.sin(2 * np.pi * rng.uniform(600, 1800) * _t(hit)) * np.exp(-_t(hit) * 80)
        for start in np.arange(rng.uniform(0, 0.1), CLIP_S, 1.0 / rate):
            s = int(start * SAMPLE_RATE)
            x[s:s + hit] += ring[: n - s] * rng.uniform(0.7, 1.0)
        x += 0.2 * _lowpass(rng.normal(0, 1, n), 300)
    elif name == 'siren':
        lo, hi = rng.uniform(500, 800), rng.uniform(1100, 1600)
        sweep = rng.choice([rng.uniform(0.2, 0.5), rng.uniform(2.5, 5)])   # wail or yelp
        f = lo + (hi - lo) * 0.5 * (1 + np.sin(2 * np.pi * sweep * t + rng.uniform(0, 6.3)))
        x = _harmonics(f, n, 5, 1.2, rng)
    elif name == 'street_music':
        scale = 220 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12) * rng.choice([1, 1.5, 2])
        beat = 60.0 / rng.uniform(80, 140)
        x = np.zeros(n)
        for start in np.arange(0, CLIP_S, beat / 2):
            s, m = int(start * SAMPLE_RATE), int(beat / 2 * SAMPLE_RATE)
            m = min(m, n - s)
            chord = sum(_harmonics(f, m, 6, 1.3, rng) for f in rng.choice(scale, 2, replace=False))
            x[s:s + m] += chord * np.exp(-_t(m) * 4)
            if int(start / (beat / 2)) % 2 == 0:                # kick drum on the beat
                k = min(int(0.1 * SAMPLE_RATE), n - s)
                x[s:s + k] += 2 * np.sin(2 * np.pi * np.linspace(120, 50, k) * _t(k)) * np.exp(-_t(k) * 30)
    else:
        raise ValueError(f'unknown class index {cls}')
    return x / (np.max(np.abs(x)) + 1e-9)


def background(n: int, rng: np.random.Generator) -> np.ndarray:
    """City background: coloured noise, traffic rumble, sometimes distant chatter."""
    from scipy import signal
    white = rng.normal(0, 1, n)
    kind = rng.integers(0, 3)
    if kind == 0:                                               # pink-ish
        x = signal.lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189], white)
    elif kind == 1:                                             # brown: distant traffic
        x = _lowpass(np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(400) / 400, 'same'), 300)
    else:
        x = _lowpass(white, rng.uniform(500, 4000))
    if rng.random() < 0.3:
        x = x / (np.std(x) + 1e-9) + 0.5 * _events(n, rng, (1, 4), (0.1, 0.3), lambda m: _voice(m, rng, 100, 220))
    return x / (np.std(x) + 1e-9)


def clip(cls: int, rng: np.random.Generator) -> np.ndarray:
    """A full clip: the class sound at a random level in background noise."""
    n = int(CLIP_S * SAMPLE_RATE)
    fg = synth(cls, n, rng)
    shift = int(rng.integers(-n // 4, n // 4))                  # the event need not be centred
    fg = np.roll(fg, shift)
    snr_db = rng.uniform(3, 20)
    bg = background(n, rng)
    fg_rms = np.sqrt(np.mean(fg ** 2)) + 1e-9
    x = fg / fg_rms * 10 ** (snr_db / 20) * 0.05 + bg * 0.05
    x *= rng.uniform(0.2, 1.0) / (np.max(np.abs(x)) + 1e-9)
    return x.astype(np.float32)


def generate(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = balanced_labels(n, len(CLASSES), rng)
    audio = np.stack([clip(int(c), rng) for c in labels]) if n else np.zeros((0, int(CLIP_S * SAMPLE_RATE)), np.float32)
    return {'audio': audio, 'labels': labels}


def load_split(split: str, seed: int = 0, size: int | None = None) -> dict[str, np.ndarray]:
    return cached_split('sounds', SPLITS, split, seed, size, 41, generate)
