"""ROS path overhead: task node publishes a 640x480 bgr8 frame -> executor publishes the result.

    python bench/bench_ros_path.py [--frames 300] [--rate-hz 20]

A probe node plays the task node: it publishes frames on jobs/traffic_light
(stamp = send time) to a real rtmdl_executor (smallest variant, CPU) over DDS
in this process, and receives the DetectionArray. Per frame:
    path overhead = (result received - frame sent) - the job's own segment times
(pre-processing, inference, post-processing, measured by the runtime), i.e.
serialisation, DDS transport both ways, message conversion and scheduling.
"""
import argparse
import os
import threading
import time

import numpy as np

os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

import rclpy  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rtmdl_interfaces.msg import DetectionArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from rtmdl_ros.data.drive import DriveSequence  # noqa: E402
from rtmdl_ros.nodes.conversions import bgr_to_image  # noqa: E402
from rtmdl_ros.nodes.executor_node import ExecutorNode  # noqa: E402
from rtmdl_ros.nodes.topics import JOB_QOS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--frames', type=int, default=300)
    ap.add_argument('--rate-hz', type=float, default=20.0)
    ap.add_argument('--variant', default='w025_d1')
    args = ap.parse_args()
    rclpy.init()
    ex = ExecutorNode(parameter_overrides=[Parameter('tasks.traffic_light.variant', value=args.variant)])
    probe = rclpy.create_node('path_probe')
    pub = probe.create_publisher(Image, 'jobs/traffic_light', JOB_QOS)
    sent, received, exec_ms = {}, {}, {}
    probe.create_subscription(DetectionArray, 'detections/traffic_light',
                              lambda m: received.setdefault(m.header.frame_id, time.perf_counter()), 50)
    ex.result_listeners.append(lambda r: exec_ms.setdefault(r.result.meta.frame_id, r.exec_ms))
    spinner = MultiThreadedExecutor(num_threads=3)
    spinner.add_node(ex)
    spinner.add_node(probe)
    threading.Thread(target=spinner.spin, daemon=True).start()
    seq = DriveSequence(seed=1)
    frames = [seq.next().image for _ in range(20)]
    time.sleep(2.0)                                            # discovery
    for k in range(args.frames):
        msg = bgr_to_image(frames[k % len(frames)], Image)
        msg.header.frame_id = str(k)
        sent[str(k)] = time.perf_counter()
        pub.publish(msg)
        time.sleep(1.0 / args.rate_hz)
    time.sleep(1.0)
    over = np.array([(received[k] - sent[k]) * 1e3 - exec_ms[k] for k in sent if k in received and k in exec_ms])
    own = np.array([exec_ms[k] for k in sent if k in exec_ms])
    print(f'{len(over)}/{args.frames} frames answered; own segment times p50 {np.percentile(own, 50):.2f} ms; '
          f'path overhead p50 {np.percentile(over, 50):.2f} ms, p90 {np.percentile(over, 90):.2f} ms, '
          f'p99 {np.percentile(over, 99):.2f} ms')
    spinner.shutdown()
    ex.destroy_node()
    probe.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    main()
