"""Test set-up: each pytest process gets its own DDS domain and stays on localhost."""
import os
import pathlib
import sys

# A domain id per process keeps parallel runs (and other users) from cross-talk.
os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 100))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

PKG_ROOT = pathlib.Path(__file__).resolve().parents[1]
# As the launch file does: shared-memory segments large enough for camera frames.
if not (os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE')):
    _var = ('FASTRTPS_DEFAULT_PROFILES_FILE' if os.environ.get('ROS_DISTRO') in ('humble', 'iron', 'jazzy')
            else 'FASTDDS_DEFAULT_PROFILES_FILE')
    os.environ[_var] = str(PKG_ROOT / 'config' / 'fastdds_large_frames.xml')
if str(PKG_ROOT) not in sys.path:
    sys.path.insert(0, str(PKG_ROOT))

EXAMPLE_TASKSET = PKG_ROOT / 'config' / 'f1tenth_example.yaml'
