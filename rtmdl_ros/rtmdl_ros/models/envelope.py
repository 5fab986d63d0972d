"""What a task's pre-processing was profiled on, and the inputs it therefore admits.

The analysis holds only for pre-processing costs the profile saw. A valid-looking
but costly input (a 4096 x 4096 frame, a chunk at 191,999 Hz that resamples with
a prime ratio, ten minutes of sound) would run one non-preemptive segment for up
to a second and block the most urgent task. So the executor refuses, at receipt,
inputs outside the task's envelope, with the reason:

    camera tasks:  at most max_frame pixels (`max_frame: [W, H]` in the task set;
                   default: the `sensors:` size of its topic, else 640 x 480, the
                   frame size `rtmdl profile` measures with), either way round,
                   and no side longer than its longer side (a strip no camera
                   makes; the bound DDS can check before a frame is copied);
    sound tasks:   at most the family's window (+5 %) of samples, at a rate the
                   model takes as it is or resamples by a ratio of small integers
                   (both terms <= 1000: 44.1 and 48 kHz to 16 kHz cost a few ms).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import IMAGE, SOUND, InputError

DEFAULT_FRAME = (640, 480)         # what `rtmdl profile` renders when a task says nothing
MAX_RESAMPLE_TERM = 1000


@dataclass(frozen=True)
class Envelope:
    kind: str
    max_width: int = DEFAULT_FRAME[0]
    max_height: int = DEFAULT_FRAME[1]
    window_s: float = 0.0          # SOUND: seconds a job carries
    model_rate: int = 0            # SOUND: the rate the model reads (0: any)
    resamples: bool = True         # SOUND: the pre-processing resamples other rates

    @property
    def max_pixels(self) -> int:
        return self.max_width * self.max_height

    @property
    def max_side(self) -> int:
        return max(self.max_width, self.max_height)

    def check_frame(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise InputError(f'frame of {width}x{height} is larger than the {self.max_width}x{self.max_height} '
                             'the task was profiled for (set max_frame in the task set and profile again)')
        if max(width, height) > self.max_side:
            raise InputError(f'frame of {width}x{height} has a side longer than the {self.max_side} px of the '
                             f'{self.max_width}x{self.max_height} the task was profiled for')

    def check_sound(self, rate: int, samples: int) -> None:
        if self.model_rate and rate != self.model_rate:
            if not self.resamples:
                raise InputError(f'sound at {rate} Hz; the model takes {self.model_rate} Hz')
            g = math.gcd(int(rate), self.model_rate)
            if max(self.model_rate // g, int(rate) // g) > MAX_RESAMPLE_TERM:
                raise InputError(f'sound at {rate} Hz resamples to {self.model_rate} Hz by {self.model_rate // g}/'
                                 f'{int(rate) // g}, far costlier than profiled')
        limit = int(math.ceil(self.window_s * 1.05 * rate)) + 1
        if self.window_s and samples > limit:
            raise InputError(f'{samples / rate:.2f} s of sound in one job; the task takes {self.window_s:g} s')


def envelope_of(task: str, spec: dict, fam, sensors: dict, where: str) -> Envelope:
    """A task's envelope from its task-set entry, the sensors section and its family."""
    if fam.input == SOUND:
        pre = getattr(fam, 'pre', None)
        rate = int(getattr(pre, 'sample_rate', 0) or getattr(fam, 'sample_rate', 0) or 16000)
        return Envelope(SOUND, window_s=float(fam.window_s), model_rate=rate, resamples=pre is None)
    size = spec.get('max_frame')
    if size is None:
        sensor = sensors.get(spec.get('input_topic') or 'image_raw')
        sensor = sensor if isinstance(sensor, dict) else {}       # nodes/graph.py reports a bad entry
        size = [sensor['width'], sensor['height']] if 'width' in sensor and 'height' in sensor else DEFAULT_FRAME
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 16384 for v in size)):
        raise ValueError(f'{where}.max_frame: expected [width, height] in pixels (8..16384), got {size!r}')
    return Envelope(IMAGE, int(size[0]), int(size[1]))
