"""The camera subscription both readers of the camera (vla_node, watchdog) make, the same way:
a raw Image on the topic, or with use_compressed a CompressedImage on <topic>/compressed (the
image_transport convention), with sensor-data QoS."""
from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image


def subscribe_camera(node: Node, camera_topic: str, use_compressed: bool,
                     callback: Callable[[Image | CompressedImage], None]):
    if use_compressed:
        return node.create_subscription(CompressedImage, camera_topic + '/compressed', callback,
                                        qos_profile_sensor_data)
    return node.create_subscription(Image, camera_topic, callback, qos_profile_sensor_data)
