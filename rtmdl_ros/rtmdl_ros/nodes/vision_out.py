"""Results as vision_msgs too (Detection2DArray, Classification), beside the suite's own types.

Opt-in (the executor's `vision_msgs` parameter), on vision/<task>, so that trackers
and viewers that speak vision_msgs (4.x: Humble, Jazzy, Kilted) take the results
unchanged. vision_msgs is not on PyPI: where it is not installed the executor says
so once at configure and keeps its own types. A class id is the model's label (a
string in vision_msgs); each message carries the source frame's header.
"""
from __future__ import annotations

import importlib

MISSING_NOTE = ('vision_msgs:=true but the vision_msgs package is not installed (apt install '
                'ros-$ROS_DISTRO-vision-msgs): results stay on detections/<task> and classifications/<task> only')


def vision_topic(task: str) -> str:
    return f'vision/{task}'


def load_vision_msgs():
    """The vision_msgs.msg module, or None where the package is not installed."""
    try:
        return importlib.import_module('vision_msgs.msg')
    except ImportError:
        return None


def vision_type(module, kind: str):
    return module.Detection2DArray if kind == 'detect' else module.Classification


def to_vision(module, result):
    """One of our results (executor_messages.result_message) as its vision_msgs twin."""
    if hasattr(result, 'detections'):
        out = module.Detection2DArray(header=result.header)
        for d in result.detections:
            det = module.Detection2D(header=result.header)
            det.bbox.center.position.x = (d.x_min + d.x_max) / 2.0
            det.bbox.center.position.y = (d.y_min + d.y_max) / 2.0
            det.bbox.size_x = float(d.x_max - d.x_min)
            det.bbox.size_y = float(d.y_max - d.y_min)
            hypothesis = module.ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = d.label
            hypothesis.hypothesis.score = float(d.score)
            det.results = [hypothesis]
            out.detections.append(det)
        return out
    return module.Classification(header=result.header, results=[
        module.ObjectHypothesis(class_id=r.label, score=float(r.score)) for r in result.results])
