"""warpd_core — everything WARPD that is not ROS: tasks, data, models, training, runtime, eval.

Never imports rclpy or any ROS message package, so it runs in a notebook, a script or a test
with no ROS installed (test/test_layout.py enforces this).
"""

__version__ = "0.1.0"
