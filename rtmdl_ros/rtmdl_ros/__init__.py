"""rtmdl_ros: RT-mDL real-time multi-DNN scheduling for ROS 2.

`rtmdl_ros.core` is the engine (pure Python, no ROS import); `rtmdl_ros.nodes`
is the thin ROS 2 shell over it.
"""
__version__ = '0.1.0'
