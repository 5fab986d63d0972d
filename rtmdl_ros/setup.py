"""ament_python package of rtmdl_ros: the engine, the ROS nodes and the `rtmdl` CLI."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'rtmdl_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml')),
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
        ],
    },
)
