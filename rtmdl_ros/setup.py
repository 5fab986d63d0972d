"""ament_python package of rtmdl_ros: the engine, the ROS nodes and the `rtmdl` CLI."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'rtmdl_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    # The trained default zoo: one supernet checkpoint per task (a few MB).
    package_data={'rtmdl_ros.models': ['zoo/*.pt']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools', 'numpy', 'PyYAML'],
    zip_safe=True,
    maintainer='rtmdl_ros maintainers',
    maintainer_email='maintainers@rtmdl-ros.org',
    description='RT-mDL real-time multi-DNN scheduling for ROS 2',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'rtmdl = rtmdl_ros.cli:main',
            # Light entries: the stop signals held from the first line (nodes/entry.py).
            'rtmdl_executor = rtmdl_ros.nodes.entry:executor_main',
            'rtmdl_optimizer = rtmdl_ros.nodes.entry:optimizer_main',
            'camera_task_node = rtmdl_ros.nodes.entry:camera_task_main',
            'sound_task_node = rtmdl_ros.nodes.entry:sound_task_main',
            'camera_source = rtmdl_ros.nodes.entry:camera_main',
            'microphone_source = rtmdl_ros.nodes.entry:microphone_main',
        ],
    },
)
