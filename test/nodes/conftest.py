"""ROS test isolation: every test gets its own rclpy Context on its own DDS domain."""
import itertools
import os

import pytest

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
_domains = itertools.count(100 + os.getpid() % 50 * 2)


@pytest.fixture
def ros_context():
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=next(_domains) % 230)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)
