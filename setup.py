"""pip install for development in a venv (scripts/setup.sh installs it editable).

On a full ROS 2 install, colcon builds this repository through CMakeLists.txt (ament_cmake):
messages, both Python packages, launch/ and config/ are installed the usual ROS way. This file
serves the pip-only route, where the messages come from the same CMakeLists.txt.
"""
from setuptools import find_packages, setup

setup(
    name="warpd",
    version="0.1.0",
    description="WARPD (World model Assisted Reactive Policy Diffusion) on ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["warpd_ros", "warpd_ros.*", "warpd_core", "warpd_core.*"]),
    package_data={"warpd_core": ["assets/*.xml", "assets/**/*.xml"]},
    install_requires=["numpy", "pyyaml"],
    entry_points={"console_scripts": ["warpd = warpd_ros.cli:main"]},
)
