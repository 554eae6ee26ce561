"""The onboard pipeline driving the simulated tea-table robot and camera.

    ros2 launch vla_edge sim_demo.launch.py [overlay_config_file:='']

Position targets by default (config/position_targets.yaml as the overlay); an empty overlay runs
the pipeline on velocity commands, the model's own actions.

The sim robot and camera run composed in one process (they share one simulated world); the
robot listens to `command`, which only the watchdog publishes.
"""
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from vla_edge.nodes.launch_overrides import ROBOT_TOPIC_ARGUMENTS, robot_topic_remaps


def generate_launch_description():
    share = FindPackageShare('vla_edge')
    args = [
        DeclareLaunchArgument('model_dir', default_value='',
                              description='Model folder (empty: the packaged reference model)'),
        DeclareLaunchArgument('instruction', default_value='',
                              description='Initial instruction (empty: the parameter file\'s; '
                                          'each episode publishes its own)'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Topic the sim camera publishes and the policy and '
                                          'watchdog read'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the nodes'),
        DeclareLaunchArgument('command_topic', default_value='command',
                              description='Where the watchdog publishes and the sim robot '
                                          'listens'),
        DeclareLaunchArgument('joint_states_topic', default_value='joint_states',
                              description='Where the sim robot publishes its state and the '
                                          'pipeline reads it'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock'),
        DeclareLaunchArgument('config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'pipeline.yaml']), description='Pipeline parameter file'),
        DeclareLaunchArgument('sim_config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'sim.yaml']), description='Sim parameter file'),
        DeclareLaunchArgument('watchdog_config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'watchdog.yaml']), description='Watchdog parameter file'),
        DeclareLaunchArgument('overlay_config_file', default_value=PathJoinSubstitution(
            [share, 'config', 'position_targets.yaml']),
                              description='Applied after the others to every node, the sim '
                                          'robot too: position targets by default; empty: '
                                          'none (velocity commands, the model\'s own actions)'),
    ]
    pipeline = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch',
                                                            'vla_edge.launch.py'])),
        launch_arguments={k: LaunchConfiguration(k) for k in
                          ('model_dir', 'instruction', 'camera_topic', 'namespace',
                           'use_sim_time', 'config_file', 'watchdog_config_file',
                           'overlay_config_file', *ROBOT_TOPIC_ARGUMENTS)}.items())
    return LaunchDescription([*args, pipeline, OpaqueFunction(function=_sim)])


def _sim(context):
    """The sim robot and camera (read once the arguments are set: the overlay is optional)."""
    overlay = LaunchConfiguration('overlay_config_file').perform(context)
    extra = [overlay] if overlay else []
    # The sim robot stands where a real one would: on the topics the pipeline was given.
    topics = robot_topic_remaps({name: LaunchConfiguration(name).perform(context)
                                 for name in ROBOT_TOPIC_ARGUMENTS})
    # No `name=`: it would rename both nodes of the process (sim_robot and sim_camera).
    return [Node(package='vla_edge', executable='sim',
                 namespace=LaunchConfiguration('namespace'),
                 parameters=[LaunchConfiguration('sim_config_file'), *extra,
                             {'use_sim_time': LaunchConfiguration('use_sim_time')}],
                 remappings=[('camera/image_raw', LaunchConfiguration('camera_topic')),
                             ('command', topics['command']),
                             ('joint_states', topics['joint_states'])],
                 output='screen')]
