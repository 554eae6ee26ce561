"""Onboard pipeline on a real ROS 2 install: vla_node + chunk_executor + watchdog.

    ros2 launch vla_edge vla_edge.launch.py model_dir:=/path/to/model instruction:="..."

chunk_executor -> command_raw -> watchdog -> command -> the robot (command_topic and
joint_states_topic remap the robot's two topics). Parameters come from
config/pipeline.yaml and config/watchdog.yaml (the files `vla-edge bringup` uses). The launch
arguments model_dir, instruction, camera_topic and use_compressed override those files only when
given: left empty, the file's value stands. overlay_config_file, when given, is applied after
them to every node (e.g. share/vla_edge/config/position_targets.yaml for a robot that takes
position targets).
"""
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from vla_edge.nodes.launch_overrides import (
    ROBOT_TOPIC_ARGUMENTS,
    given_overrides,
    robot_topic_remaps,
)

OVERRIDABLE = ('model_dir', 'instruction', 'camera_topic', 'use_compressed')


def _nodes(context):
    """The three nodes, with only the overrides the user gave (read once the arguments are set)."""
    given = given_overrides(
        {name: LaunchConfiguration(name).perform(context) for name in OVERRIDABLE}, OVERRIDABLE)
    namespace = LaunchConfiguration('namespace')
    sim_time = {'use_sim_time': LaunchConfiguration('use_sim_time')}
    overlay = LaunchConfiguration('overlay_config_file').perform(context)
    extra = [overlay] if overlay else []

    def pick(*names):
        return {k: v for k, v in given.items() if k in names}

    # The robot's own topic names: every node that reads the measured state, and the watchdog
    # (the only publisher of the robot's command), e.g. a ros2_control forward controller's
    # `/<controller>/commands`. Remapping a name onto itself changes nothing.
    topics = robot_topic_remaps({name: LaunchConfiguration(name).perform(context)
                                 for name in ROBOT_TOPIC_ARGUMENTS})
    state = ('joint_states', topics['joint_states'])
    command = ('command', topics['command'])

    vla_node = Node(
        package='vla_edge', executable='vla_node', name='vla_node', namespace=namespace,
        parameters=[LaunchConfiguration('config_file'), *extra,
                    {**pick('model_dir', 'instruction', 'camera_topic', 'use_compressed'),
                     **sim_time}],
        remappings=[state], output='screen')
    executor = Node(
        package='vla_edge', executable='chunk_executor', name='chunk_executor',
        namespace=namespace,
        parameters=[LaunchConfiguration('config_file'), *extra,
                    {**pick('model_dir'), **sim_time}],
        remappings=[state], output='screen')
    # The only publisher of the robot's `command`: checks every command_raw, holds on a fault.
    # It reads the camera and the model's rate too, so it gets the same overrides as vla_node.
    watchdog = Node(
        package='vla_edge', executable='watchdog_node', name='watchdog', namespace=namespace,
        parameters=[LaunchConfiguration('watchdog_config_file'), *extra,
                    {**pick('model_dir', 'camera_topic', 'use_compressed'), **sim_time}],
        remappings=[state, command], output='screen')
    return [vla_node, executor, watchdog]


def generate_launch_description():
    share = FindPackageShare('vla_edge')
    args = [
        DeclareLaunchArgument('model_dir', default_value='',
                              description='Model folder (empty: the parameter file\'s, whose '
                                          'empty default is the packaged reference model)'),
        DeclareLaunchArgument('instruction', default_value='',
                              description='Initial instruction (empty: the parameter file\'s; '
                                          'the instruction topic overrides)'),
        DeclareLaunchArgument('camera_topic', default_value='',
                              description='Camera topic of vla_node and the watchdog (empty: '
                                          'the parameter files\'; with use_compressed, '
                                          '<camera_topic>/compressed)'),
        DeclareLaunchArgument('use_compressed', default_value='',
                              description='true: the camera as sensor_msgs/CompressedImage on '
                                          '<camera_topic>/compressed, for vla_node and the '
                                          'watchdog (empty: the parameter files\')'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the nodes'),
        DeclareLaunchArgument('command_topic', default_value='command',
                              description='Where the watchdog publishes the robot\'s command '
                                          '(e.g. /forward_position_controller/commands); '
                                          'relative names take the namespace'),
        DeclareLaunchArgument('joint_states_topic', default_value='joint_states',
                              description='The robot\'s measured joint states (sensor_msgs/'
                                          'JointState), for vla_node, the executor and the '
                                          'watchdog'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (simulation or bag replay)'),
        DeclareLaunchArgument('config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'pipeline.yaml']),
            description='Parameter file for vla_node and chunk_executor'),
        DeclareLaunchArgument('watchdog_config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'watchdog.yaml']),
            description='Parameter file for the watchdog (limits, thresholds, camera size)'),
        DeclareLaunchArgument('overlay_config_file', default_value='',
                              description='A parameter file applied after the others to every '
                                          'node (e.g. config/position_targets.yaml: position '
                                          'targets instead of velocities); empty: none'),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes)])
