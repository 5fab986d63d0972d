"""The F1/10 RT-mDL graph: rtmdl.launch.py with the package's config/f1tenth.yaml.

    ros2 launch rtmdl_ros f1tenth.launch.py plan_file:=/path/plan.yaml
    ros2 launch rtmdl_ros f1tenth.launch.py use_sim_sensors:=false namespace:=car1

Every argument of rtmdl.launch.py passes through (taskset_file too, e.g. a
profiled copy of f1tenth.yaml from `rtmdl profile`).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    share = get_package_share_directory('rtmdl_ros')
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'rtmdl.launch.py')))])
