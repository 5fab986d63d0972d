"""Topic names and QoS shared by the nodes (relative names: they follow the namespace)."""
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

# Job topics: the newest job matters; a short reliable queue loses nothing on one host.
JOB_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def job_topic(task: str) -> str:
    return f'jobs/{task}'


def result_topic(task: str, kind: str) -> str:
    return f'detections/{task}' if kind == 'detect' else f'classifications/{task}'


STATUS_TOPIC = 'status'
TRACE_TOPIC = 'trace'

# Sensor topics a task reads unless its `input_topic` says otherwise.
DEFAULT_CAMERA_TOPIC = 'image_raw'
DEFAULT_SOUND_TOPIC = 'sound'
