"""warpd_ros — ROS 2 glue for WARPD: nodes, message conversion, bringup and the `warpd` CLI.

The generated interfaces (``warpd_ros.msg``) are built by rosidl and installed next to, not
inside, this source tree when developing in a venv; ``extend_path`` lets one ``warpd_ros``
package span both places, exactly as it does in a colcon install space.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
