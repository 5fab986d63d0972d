"""DDS content filters that drop junk before it reaches Python.

A flood of malformed frames costs the graph in DDS copies and Python callbacks,
and pushes real frames out of a sensor-data queue (depth 5) before any check
runs. A content-filtered subscription lets DDS evaluate the cheap field checks
(encoding, sizes, sample rate) on receipt, or in the publishing process, so a
refused sample never enters the queue. The filter is a necessary condition
only: what passes is still checked in full in Python (conversions.py), and
what it drops is not counted as malformed.

ContentFilterOptions is rclpy >= 9 (Kilted); on Humble and Jazzy, or an RMW
without content filters, the subscription is made without one and the Python
checks carry the whole load.
"""
from __future__ import annotations

from ..models import SAMPLE_RATES_HZ, SOUND
from .conversions import ENCODINGS

INPUT_FILTER_HELP = ('drop inputs outside the profiled envelope in DDS (rclpy >= 9): a junk flood then '
                     'costs little, but what DDS drops is not counted as malformed; false: every input '
                     'reaches the receipt checks and is counted by its reason')


def image_filter(envelope) -> tuple[str, list[str]]:
    """(expression, parameters) passing frames check_image_fields and the envelope may accept."""
    encodings = sorted(ENCODINGS) + sorted(e.upper() for e in ENCODINGS)
    params = [f"'{e}'" for e in encodings]
    either = ' OR '.join(f'encoding = %{k}' for k in range(len(encodings)))
    # width x height <= max_pixels cannot be written in the filter grammar (no
    # arithmetic); the envelope's bound on each side can.
    n = len(params)
    params.append(str(envelope.max_side))
    return (f'({either}) AND width > 0 AND height > 0 AND width <= %{n} AND height <= %{n} '
            'AND step >= width', params)


def sound_filter(envelope) -> tuple[str, list[str]]:
    """(expression, parameters) passing chunks check_chunk_fields and the envelope may accept."""
    if envelope.model_rate and not envelope.resamples:
        return 'sample_rate = %0 AND channels > 0', [str(envelope.model_rate)]
    return 'sample_rate >= %0 AND sample_rate <= %1 AND channels > 0', [str(r) for r in SAMPLE_RATES_HZ]


def image_job_filter(envelope, picture_size: tuple[int, int]) -> tuple[str, list[str]]:
    """(expression, parameters) passing ImageJobs of the model's picture size from a frame the task admits."""
    return ('width = %0 AND height = %1 AND source_width > 0 AND source_height > 0 '
            'AND source_width <= %2 AND source_height <= %2',
            [str(picture_size[0]), str(picture_size[1]), str(envelope.max_side)])


def sensor_filter(envelope) -> tuple[str, list[str]]:
    """The filter of a task's sensor topic."""
    return sound_filter(envelope) if envelope.kind == SOUND else image_filter(envelope)


def widest_filter(kind: str, envelopes) -> tuple[str, list[str]]:
    """One sensor filter passing what any of these tasks (on one topic) may accept."""
    if kind == SOUND:
        filters = {tuple(map(tuple, sound_filter(e))) for e in envelopes}
        return sound_filter(envelopes[0]) if len(filters) == 1 else \
            ('sample_rate >= %0 AND sample_rate <= %1 AND channels > 0', [str(r) for r in SAMPLE_RATES_HZ])
    return image_filter(max(envelopes, key=lambda e: e.max_side))


def job_filter(envelope, picture_size: tuple[int, int] | None) -> tuple[str, list[str]]:
    """The filter of a task's job topic (a SoundJob is mono: no channels field)."""
    if envelope.kind == SOUND:
        expression, params = sound_filter(envelope)
        return expression.replace(' AND channels > 0', ''), params
    return image_job_filter(envelope, picture_size)


def filter_text(content_filter: tuple[str, list[str]]) -> str:
    """The filter with its parameters written in, for a log line."""
    expression, params = content_filter
    for k in reversed(range(len(params))):           # %10 before %1
        expression = expression.replace(f'%{k}', params[k])
    return expression


def content_filters_available() -> bool:
    """This rclpy has DDS content filters (>= 9, Kilted; not Humble or Jazzy)."""
    try:
        import rclpy.subscription_content_filter_options  # noqa: F401
    except ImportError:
        return False
    return True


def filtered_subscription(node, msg_type, topic: str, callback, qos, content_filter, raw: bool = False):
    """(subscription, True) filtered in DDS by content_filter (expression, parameters), or
    (subscription, False) where this rclpy or RMW has no content filters or none is given."""
    options = {}
    if content_filter is not None:
        try:
            from rclpy.subscription_content_filter_options import ContentFilterOptions
            options['content_filter_options'] = ContentFilterOptions(
                filter_expression=content_filter[0], expression_parameters=content_filter[1])
        except ImportError:                      # rclpy < 9: Humble, Jazzy
            pass
    sub = node.create_subscription(msg_type, topic, callback, qos, raw=raw, **options)
    return sub, bool(options) and bool(sub.is_cft_enabled)
