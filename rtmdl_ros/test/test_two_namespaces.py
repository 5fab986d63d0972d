"""The graph split over two network namespaces, as over two computers: the simulated
camera and microphone in one, the executor in the other, a veth pair with 1 ms
(+- 0.2 ms) of delay each way between them (tools/two_namespaces.sh). Needs root
for `ip netns`; skips with the reason where it cannot make namespaces."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'two_namespaces.sh'
RTMDL = [sys.executable, '-c', 'import sys; from rtmdl_ros.cli import main; sys.exit(main())']


def _why_not() -> str:
    if os.geteuid() != 0:
        return 'needs root to make network namespaces (ip netns)'
    if shutil.which('ip') is None or shutil.which('tc') is None:
        return 'needs iproute2 (ip, tc)'
    probe = f'rtprobe{os.getpid() % 100000}'
    made = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f'ip netns add failed: {made.stderr.strip()}'
    subprocess.run(['ip', 'netns', 'del', probe], capture_output=True)
    return ''


WHY_NOT = _why_not()


@pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT)
def test_every_task_publishes_with_its_sensors_across_the_link(tmp_path):
    prefix = f'rt{os.getpid() % 100000}'
    env = dict(os.environ, ROS_DOMAIN_ID=str(150 + (os.getpid() + 7) % 80), ROS_LOG_DIR=str(tmp_path / 'logs'))
    up = subprocess.run(['bash', str(SCRIPT), 'up', '--prefix', prefix], capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    try:
        run = subprocess.run(['bash', str(SCRIPT), 'run', '--prefix', prefix, '--'] + RTMDL
                             + ['bringup', 'f1tenth', '--duration-s', '8', '--quiet'],
                             capture_output=True, text=True, timeout=240, env=env)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out
        for task in ('traffic_light', 'sign', 'audio'):
            row = next(line for line in out.splitlines() if line.startswith(task) and 'w100_d3' in line)
            assert int(row.split()[4]) > 0, row                  # jobs released from frames that crossed
        # The sensors ran in the other namespace: its only way out is the veth.
        logs = pathlib.Path(tmp_path / 'logs')
        assert any(p.name.startswith('camera_source') for p in logs.rglob('*.log'))
    finally:
        subprocess.run(['bash', str(SCRIPT), 'down', '--prefix', prefix], capture_output=True)
