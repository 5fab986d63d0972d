"""A plan file is a real ROS 2 parameters file for the executor node."""
import subprocess
import sys
import textwrap

import pytest

from conftest import EXAMPLE_TASKSET

rclpy = pytest.importorskip('rclpy')

# Runs in a fresh process: rclpy.init() parses --ros-args exactly as for a node
# started by `ros2 run ... --ros-args --params-file PLAN.yaml`.
NODE = textwrap.dedent('''
    import sys, rclpy
    from rclpy.node import Node
    rclpy.init(args=['--ros-args', '--params-file', sys.argv[1]])
    node = Node('rtmdl_executor', automatically_declare_parameters_from_overrides=True)
    for name in ('traffic_light', 'sign', 'audio'):
        print(name, node.get_parameter(f'tasks.{name}.variant').value,
              node.get_parameter(f'tasks.{name}.priority').value)
    node.destroy_node()
    rclpy.shutdown()
''')


def test_executor_node_reads_the_plan(tmp_path):
    plan = tmp_path / 'plan.yaml'
    made = subprocess.run([sys.executable, '-m', 'rtmdl_ros.cli', 'optimize', str(EXAMPLE_TASKSET),
                           '--policy', 'dm-mc', '--out', str(plan)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    res = subprocess.run([sys.executable, '-c', NODE, str(plan)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = {line.split()[0]: (line.split()[1], int(line.split()[2])) for line in res.stdout.splitlines()}
    assert got == {'traffic_light': ('w050_d3', 0), 'sign': ('w050_d2', 1), 'audio': ('w050_d2', 2)}
