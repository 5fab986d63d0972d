"""Pictures to look at: `annotated/<task>`, the source frame with what the model found.

Opt-in (the executor's `annotate_hz`), throttled per task, and off the
scheduler's critical path: a job's post segment only leaves its frame and
result in a one-slot mailbox per task (a newer one replaces it); a thread of
its own draws and publishes at most annotate_hz pictures a second per task.
Boxes, labels and scores are drawn on the source frame (a detector), or the
top class with its score (a classifier). Only jobs whose frame is in this
process (composed task nodes) can be drawn: a job from a task node elsewhere
carries the model's picture, not the camera's frame.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

COLOURS = ((0, 220, 0), (0, 160, 255), (255, 80, 0), (220, 0, 220), (0, 220, 220), (80, 80, 255))


def to_bgr(frame) -> np.ndarray:
    """A Frame (bgr8, rgb8, mono8) or CompressedFrame as a bgr image of its own (drawn on)."""
    from .compressed import CompressedFrame, decode
    if isinstance(frame, CompressedFrame):
        frame = decode(frame)
    if frame.encoding == 'mono8':
        return cv2.cvtColor(np.ascontiguousarray(frame.pixels[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if frame.encoding == 'rgb8':
        return cv2.cvtColor(frame.pixels, cv2.COLOR_RGB2BGR)
    return np.array(frame.pixels, dtype=np.uint8, copy=True)


def draw(image: np.ndarray, result) -> np.ndarray:
    """Draw a Result (models/jobs.py) on a bgr image, in place; returns it."""
    h, w = image.shape[:2]
    scale = max(0.35, min(w, h) / 900.0)
    if result.kind == 'detect':
        for label, cid, score, box in result.detections:
            colour = COLOURS[int(cid) % len(COLOURS)]
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            x0, x1 = max(0, min(w - 1, x0)), max(0, min(w - 1, x1))
            y0, y1 = max(0, min(h - 1, y0)), max(0, min(h - 1, y1))
            cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2)
            cv2.putText(image, f'{label} {score:.2f}', (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        colour, 1, cv2.LINE_AA)
    elif result.labels:
        label, _, score = result.labels[0]
        cv2.putText(image, f'{label} {score:.2f}', (8, int(24 * scale / 0.5)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale * 1.4, COLOURS[0], 2, cv2.LINE_AA)
    return image


class Annotator:
    """One-slot mailbox per task and a drawing thread; publish(task, bgr, header) sends a picture."""

    def __init__(self, rate_hz: float, publish, warn=print):
        self.period_s = 1.0 / rate_hz
        self.publish, self.warn = publish, warn
        self.errors = 0
        self._slots: dict[str, tuple] = {}
        self._due: dict[str, float] = {}
        self._wake = threading.Condition()
        self._stop = False
        self.drawn = 0
        self._thread = threading.Thread(target=self._run, name='annotate', daemon=True)
        self._thread.start()

    def offer(self, task: str, frame, result, header) -> None:
        """From a job's post segment: cheap, never waits for the drawing."""
        now = time.monotonic()
        if now < self._due.get(task, 0.0):
            return
        self._due[task] = now + self.period_s
        with self._wake:
            self._slots[task] = (frame, result, header)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._slots and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                task, (frame, result, header) = self._slots.popitem()
            try:
                self.publish(task, draw(to_bgr(frame), result), header)
                self.drawn += 1
            except Exception as e:                # noqa: BLE001 - a picture must never stop the executor
                self.errors += 1
                if self.errors in (1, 10, 100) or self.errors % 1000 == 0:
                    self.warn(f'annotated/{task}: picture not drawn ({self.errors} so far): {type(e).__name__}: {e}')

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(2.0)
