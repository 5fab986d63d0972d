"""ROS path: a camera frame's stamp -> the scheduler's release, against bare rclpy floors.

    python bench/bench_ros_path.py [--seconds 20] [--fps 30] [--plan PLAN.yaml]

Every run uses the same frames (640x480 bgr8, prebuilt, stamped at publish) from
a camera process at `fps`, one after the other:

  one hop  camera -> a bare rclpy subscriber in another process (raw), stamp ->
           receipt: what any ROS 2 node reading this camera pays;
  two hops camera -> a bare rclpy relay (raw subscription, publish the same
           bytes) -> a bare subscriber: the layout the graph had before its task
           nodes sent pictures instead of frames;
  ours     camera -> traffic_light_node / sign_node -> rtmdl_executor (`rtmdl
           bringup` without its simulated sensors), the path read from the
           executor's job traces: sensor + node + transport stages, i.e. stamp ->
           release, including the task node's crop and resize.

It prints p50/p90/p99 of each, our ratio to both floors, and the CPU the machine
used during each run. The executor's scheduler threads run the plan meanwhile
(our run carries that load; the floors do not), which is what a user's graph sees.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

from rtmdl_ros.core.trace import PATH_STAGES

os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

CAMERA = textwrap.dedent('''
    import sys, time, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from rtmdl_ros.data.drive import DriveSequence
    from rtmdl_ros.nodes.conversions import bgr_to_image
    rclpy.init()
    node = rclpy.create_node('bench_camera')
    pub = node.create_publisher(Image, 'image_raw', qos_profile_sensor_data)
    seq = DriveSequence(seed=1)
    msgs = [bgr_to_image(seq.next().image, Image) for _ in range(30)]
    time.sleep(float(sys.argv[1]))                       # wait for the rest of the graph
    fps, end, k = float(sys.argv[2]), time.monotonic() + float(sys.argv[3]), 0
    nxt = time.monotonic()
    while time.monotonic() < end:
        msg = msgs[k % len(msgs)]
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        k += 1
        nxt += 1.0 / fps
        time.sleep(max(0.0, nxt - time.monotonic()))
    print(k)
''')
RELAY = textwrap.dedent('''
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from rtmdl_ros.nodes.topics import JOB_QOS
    rclpy.init()
    node = rclpy.create_node('bench_relay')
    pub = node.create_publisher(Image, 'relay_out', JOB_QOS)
    node.create_subscription(Image, 'image_raw', pub.publish, qos_profile_sensor_data, raw=True)
    try:
        rclpy.spin(node)
    except Exception:
        pass
''')
RECEIVER = textwrap.dedent('''
    import json, signal, sys, rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from rtmdl_ros.nodes.conversions import stamp_of_serialized
    from rtmdl_ros.nodes.topics import JOB_QOS
    rclpy.init()
    node = rclpy.create_node('bench_receiver')
    lat = []
    def on(raw):
        sec, ns = stamp_of_serialized(raw)
        lat.append(node.get_clock().now().nanoseconds * 1e-6 - (sec * 1e3 + ns * 1e-6))
    topic = sys.argv[2]
    node.create_subscription(Image, topic, on, qos_profile_sensor_data if topic == 'image_raw' else JOB_QOS, raw=True)
    try:
        rclpy.spin(node)
    except BaseException:
        pass
    json.dump(lat, open(sys.argv[1], 'w'))
''')


def _py(code, *args):
    return subprocess.Popen([sys.executable, '-c', code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _cpu_busy():
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return time.monotonic(), sum(fields) - fields[3] - fields[4]


def _cores(start, end):
    return (end[1] - start[1]) / os.sysconf('SC_CLK_TCK') / (end[0] - start[0])


def floor_run(seconds, fps, hops):
    """stamp -> receipt over one hop (camera -> subscriber) or two (camera -> relay -> subscriber)."""
    out = tempfile.mktemp(suffix='.json')
    procs = [_py(RECEIVER, out, 'image_raw' if hops == 1 else 'relay_out')] + ([_py(RELAY)] if hops == 2 else [])
    t0 = _cpu_busy()
    cam = _py(CAMERA, 3.0, fps, seconds)
    cam.communicate(timeout=seconds + 60)
    t1 = _cpu_busy()
    time.sleep(0.5)
    for p in reversed(procs):
        p.send_signal(2)
        p.wait(10)
    lat = np.array(json.load(open(out)))
    os.unlink(out)
    return lat, _cores(t0, t1)


def ours_run(seconds, fps, plan, taskset):
    from rtmdl_ros.bringup import bringup
    traces = []
    cam = _py(CAMERA, 9.0, fps, seconds)                  # starts publishing once the executor is active
    t0 = _cpu_busy()
    rc = bringup('f1tenth', plan, 'onnxruntime', 'cpu', '', False, seconds + 9.0, taskset, quiet=True,
                 traces_out=traces)
    t1 = _cpu_busy()
    cam.communicate(timeout=60)
    mine = [t for t in traces if t.task == 'traffic_light']
    stages = np.array([t.stages_ms[:len(PATH_STAGES)] for t in mine]).reshape(-1, len(PATH_STAGES))
    return rc, np.array([t.path_ms for t in mine]), stages, _cores(t0, t1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seconds', type=float, default=20.0)
    ap.add_argument('--fps', type=float, default=30.0)
    ap.add_argument('--plan', help='plan for the executor (default: largest variants)')
    ap.add_argument('--taskset', help='task set (default: config/f1tenth.yaml)')
    args = ap.parse_args()
    one, one_cpu = floor_run(args.seconds, args.fps, hops=1)
    two, two_cpu = floor_run(args.seconds, args.fps, hops=2)
    rc, ours, stages, ours_cpu = ours_run(args.seconds, args.fps, args.plan, args.taskset)
    q = lambda a, p: float(np.percentile(a, p)) if len(a) else float('nan')   # noqa: E731
    print(f'\nframes: one hop {len(one)}, two hops {len(two)}, ours {len(ours)} traffic_light jobs '
          f'({args.fps:g} fps, {args.seconds:g} s)')
    print(f'{"path (ms)":<34}{"p50":>8}{"p90":>8}{"p99":>8}{"CPU":>8}')
    for name, a, cpu in (('one hop: camera->subscriber', one, one_cpu), ('two hops: camera->relay->sub', two, two_cpu),
                         ('ours: stamp->release', ours, ours_cpu)):
        print(f'{name:<34}{q(a, 50):>8.2f}{q(a, 90):>8.2f}{q(a, 99):>8.2f}{cpu:>8.2f}')
    for k, stage in enumerate(PATH_STAGES):
        print(f'{"  of which " + stage:<34}{q(stages[:, k], 50):>8.2f}{q(stages[:, k], 90):>8.2f}{q(stages[:, k], 99):>8.2f}')
    for name, floor in (('one hop', one), ('two hops', two)):
        print(f'ours / {name}: p50 {q(ours, 50) / q(floor, 50):.2f}x, p99 {q(ours, 99) / q(floor, 99):.2f}x')
    print(f'CPU = cores the whole machine was busy during each run (all processes, of {os.cpu_count()})')
    sys.exit(rc)


if __name__ == '__main__':
    main()
