"""Replay test helpers: an rclpy Context per test on a domain of its own (200-229, one per test),
localhost-only discovery, nodes spun on their own executors, a raw collector node."""
import contextlib
import os
import time
from types import SimpleNamespace

import pytest

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'


@contextlib.contextmanager
def ros_domain(domain_id: int):
    import rclpy

    assert 200 <= domain_id <= 229
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain_id)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@contextlib.contextmanager
def spinning(ctx, *nodes):
    """Spin the nodes on their own executor threads; stop, then destroy them."""
    from vla_edge.nodes.isolated_executors import IsolatedExecutors

    executors = IsolatedExecutors(list(nodes), context=ctx).start()
    try:
        yield
    finally:
        executors.shutdown()
        for node in nodes:
            node.destroy_node()


def wait_for(condition, timeout_s=5.0, poll_s=0.01):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


def make_collector(ctx, topics, qos=100):
    """A node recording (topic, raw bytes, received_timestamp ns, monotonic s) per message."""
    from rclpy.node import Node

    from vla_edge.replay.msg_types import import_message_class

    node = Node('collector', context=ctx)
    node.got = []
    for topic, msgtype in topics.items():
        def on_msg(data, info, topic=topic):
            node.got.append((topic, data, info['received_timestamp'], time.monotonic()))
        node.create_subscription(import_message_class(msgtype), topic, on_msg, qos, raw=True)
    return node


@pytest.fixture
def ros():
    """The helpers above, for test modules (a conftest is not imported directly)."""
    return SimpleNamespace(domain=ros_domain, spinning=spinning, wait_for=wait_for,
                           collector=make_collector)
