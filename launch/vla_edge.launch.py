"""Onboard pipeline on a real ROS 2 install: vla_node + chunk_executor + watchdog.

    ros2 launch vla_edge vla_edge.launch.py model_dir:=/path/to/model instruction:="..."

chunk_executor -> command_raw -> watchdog -> command -> the robot. Parameters come from
config/pipeline.yaml and config/watchdog.yaml (the files `vla-edge bringup` uses); the launch
arguments below override the most common ones.
"""
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description():
    config = LaunchConfiguration('config_file')
    watchdog_config = LaunchConfiguration('watchdog_config_file')
    namespace = LaunchConfiguration('namespace')
    use_sim_time = LaunchConfiguration('use_sim_time')
    use_compressed = LaunchConfiguration('use_compressed')
    args = [
        DeclareLaunchArgument('model_dir', default_value='',
                              description='Model folder (empty: the packaged reference model)'),
        DeclareLaunchArgument('instruction', default_value='put the tea bag in the mug',
                              description='Initial instruction (the instruction topic overrides)'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Camera topic (sensor_msgs/Image; with '
                                          'use_compressed, <camera_topic>/compressed)'),
        DeclareLaunchArgument('use_compressed', default_value='false',
                              description='Camera as sensor_msgs/CompressedImage on '
                                          '<camera_topic>/compressed (vla_node and watchdog)'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of the nodes'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (simulation or bag replay)'),
        DeclareLaunchArgument('config_file', default_value=PathJoinSubstitution(
            [FindPackageShare('vla_edge'), 'config', 'pipeline.yaml']),
            description='Parameter file for vla_node and chunk_executor'),
        DeclareLaunchArgument('watchdog_config_file', default_value=PathJoinSubstitution(
            [FindPackageShare('vla_edge'), 'config', 'watchdog.yaml']),
            description='Parameter file for the watchdog (limits, thresholds, camera size)'),
    ]
    vla_node = Node(
        package='vla_edge', executable='vla_node', name='vla_node', namespace=namespace,
        parameters=[config, {'model_dir': LaunchConfiguration('model_dir'),
                             'instruction': LaunchConfiguration('instruction'),
                             'camera_topic': LaunchConfiguration('camera_topic'),
                             'use_compressed': use_compressed,
                             'use_sim_time': use_sim_time}],
        output='screen')
    executor = Node(
        package='vla_edge', executable='chunk_executor', name='chunk_executor',
        namespace=namespace, parameters=[config, {'model_dir': LaunchConfiguration('model_dir'),
                                                  'use_sim_time': use_sim_time}],
        output='screen')
    # The only publisher of the robot's `command`: checks every command_raw, holds on a fault.
    watchdog = Node(
        package='vla_edge', executable='watchdog_node', name='watchdog', namespace=namespace,
        parameters=[watchdog_config, {'model_dir': LaunchConfiguration('model_dir'),
                                      'camera_topic': LaunchConfiguration('camera_topic'),
                                      'use_compressed': use_compressed,
                                      'use_sim_time': use_sim_time}],
        output='screen')
    return LaunchDescription([*args, vla_node, executor, watchdog])
