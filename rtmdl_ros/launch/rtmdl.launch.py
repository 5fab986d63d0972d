"""An RT-mDL graph made from a task set: executor, a task node per task and (optionally)
a simulated sensor per input topic.

    ros2 launch rtmdl_ros rtmdl.launch.py taskset_file:=/path/my_car.yaml plan_file:=/path/plan.yaml
    ros2 launch rtmdl_ros f1tenth.launch.py plan_file:=/path/plan.yaml        # the F1/10 task set

Arguments: plan_file (ROS parameters file from `rtmdl optimize`; empty = largest
variants, deadline-monotonic), use_sim_sensors (simulated camera + microphone per input topic),
backend (onnxruntime | torch), device (cpu | cuda | tensorrt), namespace, taskset_file
(default: this package's config/f1tenth.yaml), camera_topic, sound_topic,
autostart (the executor configures and activates itself; false: drive it with
`ros2 lifecycle set /rtmdl_executor configure|activate`), respawn_executor
(true: a crashed executor is restarted after 1 s with the same plan file),
compose_task_nodes (true: the task nodes run inside the executor's process and
hand jobs over directly; false: a process each, publishing on jobs/<task>),
annotate_hz (pictures a second on annotated/<task>: the frame with what the
model found; 0: none). A camera_topic ending in /compressed carries
sensor_msgs/CompressedImage (jpeg, png). The nodes come from rtmdl_ros.nodes.graph, which `rtmdl bringup f1tenth` uses
too, so both start the same graph in the same process layout.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _graph(context):
    from rtmdl_ros.nodes.graph import graph_specs
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        'plan_file', 'use_sim_sensors', 'backend', 'device', 'namespace', 'taskset_file',
        'camera_topic', 'sound_topic', 'autostart', 'respawn_executor', 'compose_task_nodes', 'annotate_hz')}
    if arg['plan_file'] and not os.path.isfile(arg['plan_file']):
        raise RuntimeError(f"plan_file {arg['plan_file']}: no such file (make one with `rtmdl optimize`)")
    specs = graph_specs(arg['taskset_file'], arg['plan_file'] or None, arg['backend'], arg['device'],
                        arg['use_sim_sensors'].lower() in ('true', '1', 'yes'), arg['camera_topic'],
                        arg['sound_topic'], {'autostart': arg['autostart'].lower() in ('true', '1', 'yes'),
                                             'annotate_hz': float(arg['annotate_hz'])},
                        compose=arg['compose_task_nodes'].lower() in ('true', '1', 'yes'))
    respawn = arg['respawn_executor'].lower() in ('true', '1', 'yes')
    actions = []
    for spec in specs:
        params = [spec.params] + ([spec.params_file] if spec.params_file else [])
        # A crashed executor comes back with the plan file; the task nodes wait for it by themselves.
        extra = {'respawn': True, 'respawn_delay': 1.0} if respawn and spec.role == 'executor' else {}
        actions.append(Node(package='rtmdl_ros', executable=spec.executable, name=spec.name,
                            namespace=arg['namespace'], parameters=params, remappings=list(spec.remaps),
                            output='screen', emulate_tty=spec.role == 'executor', **extra))
    return actions


def _fastdds_profile():
    """Large shared-memory segments, so 640x480 frames do not fall back to lossy UDP
    (see config/fastdds_large_frames.xml); a profile the user set wins."""
    if os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE'):
        return []
    xml = os.path.join(get_package_share_directory('rtmdl_ros'), 'config', 'fastdds_large_frames.xml')
    # Fast DDS 2 (Humble, Jazzy) reads FASTRTPS_*, Fast DDS 3 (Kilted on) FASTDDS_*.
    name = ('FASTRTPS_DEFAULT_PROFILES_FILE' if os.environ.get('ROS_DISTRO') in ('humble', 'iron', 'jazzy')
            else 'FASTDDS_DEFAULT_PROFILES_FILE')
    return [SetEnvironmentVariable(name, xml)]


def generate_launch_description():
    config = os.path.join(get_package_share_directory('rtmdl_ros'), 'config', 'f1tenth.yaml')
    return LaunchDescription(_fastdds_profile() + [
        DeclareLaunchArgument('plan_file', default_value='', description='plan from `rtmdl optimize` (empty: dm-nmc)'),
        DeclareLaunchArgument('use_sim_sensors', default_value='true', description='synthetic camera and microphone'),
        DeclareLaunchArgument('backend', default_value='onnxruntime', choices=['onnxruntime', 'torch']),
        DeclareLaunchArgument('device', default_value='cpu', choices=['cpu', 'cuda', 'tensorrt']),
        DeclareLaunchArgument('namespace', default_value=''),
        DeclareLaunchArgument('taskset_file', default_value=config, description='task set (config schema)'),
        DeclareLaunchArgument('camera_topic', default_value='image_raw'),
        DeclareLaunchArgument('sound_topic', default_value='sound'),
        DeclareLaunchArgument('autostart', default_value='true', description='executor configures + activates itself'),
        DeclareLaunchArgument('respawn_executor', default_value='true', description='restart a crashed executor'),
        DeclareLaunchArgument('compose_task_nodes', default_value='true',
                              description='task nodes inside the executor process (false: a process each)'),
        DeclareLaunchArgument('annotate_hz', default_value='0.0',
                              description='pictures a second on annotated/<task> (boxes on the frame); 0: none'),
        OpaqueFunction(function=_graph),
    ])
