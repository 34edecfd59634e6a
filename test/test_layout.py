"""The package has the shape ROS and pip users expect, and warpd_core stays free of ROS."""
import ast
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import REPO

ROS_MODULES = ("rclpy", "rosidl", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs",
               "diagnostic_msgs", "warpd_ros", "launch", "launch_ros", "ament_index_python", "rosbag2_py")


def test_required_layout_exists():
    for path in ("warpd_ros", "warpd_core", "launch", "config", "msg", "test", "package.xml", "setup.py",
                 "CMakeLists.txt", "msg/PolicyWeights.msg", "msg/ControllerStatus.msg"):
        assert (REPO / path).exists(), path


def test_package_xml_is_format3_ament_cmake_interface_package():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "warpd_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    assert "rosidl_default_generators" in [e.text for e in root.findall("buildtool_depend")]
    assert root.findtext("member_of_group") == "rosidl_interface_packages"


def test_cmake_installs_python_launch_and_config_for_colcon():
    text = (REPO / "CMakeLists.txt").read_text()
    # rosidl already installs the generated warpd_ros package; our modules are merged into it
    assert 'install(DIRECTORY warpd_ros/ DESTINATION "${PYTHON_INSTALL_DIR}/warpd_ros"' in text
    assert "ament_python_install_package(warpd_core)" in text
    assert "install(DIRECTORY launch config DESTINATION share/${PROJECT_NAME})" in text


def _imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_warpd_core_source_imports_no_ros_module():
    offenders = {}
    for path in (REPO / "warpd_core").rglob("*.py"):
        bad = sorted(set(_imported_roots(path)) & set(ROS_MODULES))
        if bad:
            offenders[str(path.relative_to(REPO))] = bad
    assert offenders == {}


def test_warpd_core_imports_with_ros_blocked():
    """Import every warpd_core module in a process where importing any ROS module raises."""
    script = f"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = {ROS_MODULES!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("ROS module imported from warpd_core: " + name)
sys.meta_path.insert(0, Block())
import warpd_core
names = [m.name for m in pkgutil.walk_packages(warpd_core.__path__, "warpd_core.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 3  # errors, runtime, runtime.policy_spec, ...
