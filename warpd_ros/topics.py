"""Topic names of the warpd_ros graph, in one place.

Relative names, as ROS convention asks: each resolves in its node's namespace, so
`warpd bringup sim --namespace r1` (or `ros2 launch ... namespace:=r1`) puts a whole graph under /r1
and several robots share one domain without crosstalk. In the root namespace they are the
ros2_control defaults, so a real robot plugs in by remapping, not by code changes:
`joint_state_broadcaster` publishes /joint_states, and a velocity `forward_command_controller` named
forward_velocity_controller listens on /forward_velocity_controller/commands.
/diagnostics stays absolute: it is the one topic a diagnostic aggregator reads for every robot
(each status names its node in full in hardware_id). /tf is absolute too: tf listeners (RViz,
Foxglove, tf2_ros) read the one /tf; several robots keep apart by warpd_sim's frame_prefix.
"""

JOINT_STATES = "joint_states"  # sensor_msgs/JointState: positions + velocities of the robot's joints
JOINT_COMMANDS = "forward_velocity_controller/commands"  # std_msgs/Float64MultiArray, one value per joint
TASK_FEATURES = "warpd/task_features"  # std_msgs/Float64MultiArray: observation entries beyond the joints (goal)
GOAL_POSE = "warpd/goal_pose"  # geometry_msgs/PoseStamped, default QoS: the goal (RViz's goal tool, ros2 topic pub)
POLICY_WEIGHTS = "warpd/policy_weights"  # warpd_ros/PolicyWeights: the policy-swap topic
CONTROLLER_STATUS = "warpd/controller_status"  # warpd_ros/ControllerStatus, ~10 Hz
EPISODE_EVENTS = "warpd/episode_events"  # warpd_ros/EpisodeEvent: sim resets, successes, timeouts, pushes
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray, ~10 Hz
TF = "/tf"  # tf2_msgs/TFMessage: the sim's link poses (parent link -> child link, rooted at `world`)
ROBOT_DESCRIPTION = "robot_description"  # std_msgs/String, latched: the URDF generated from the sim's model
MARKERS = "warpd/markers"  # visualization_msgs/MarkerArray: goal, obstacles, executed path, policy swap points
