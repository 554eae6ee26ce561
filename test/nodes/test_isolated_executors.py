"""Which executor spins the composed pipeline, and that either kind really delivers messages."""
import time

import pytest
from std_msgs.msg import String

from vla_edge.nodes.isolated_executors import (
    IsolatedExecutors,
    default_executor_kind,
    make_executor,
)


def test_the_default_is_the_single_threaded_executor(monkeypatch):
    monkeypatch.delenv('VLA_EDGE_EXECUTOR', raising=False)
    assert default_executor_kind() == 'single'
    monkeypatch.setenv('VLA_EDGE_EXECUTOR', ' Events ')
    assert default_executor_kind() == 'events'


def test_an_unknown_executor_kind_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv('VLA_EDGE_EXECUTOR', 'multi')
    with pytest.raises(ValueError, match="'events', 'single'"):
        default_executor_kind()
    with pytest.raises(ValueError, match='executor kind'):
        make_executor('multi')


@pytest.mark.parametrize('kind', ['single', 'events'])
def test_each_kind_delivers_messages_between_composed_nodes(kind, ros_context, capsys):
    """capsys: stderr is captured, as in pytest or under a log wrapper, where rclpy's
    EventsExecutor (faulthandler.enable) used to fail with 'fileno'."""
    from rclpy.node import Node

    talker = Node('talker', context=ros_context)
    listener = Node('listener', context=ros_context)
    got = []
    pub = talker.create_publisher(String, 'chatter', 10)
    listener.create_subscription(String, 'chatter', lambda m: got.append(m.data), 10)
    spin = IsolatedExecutors([talker, listener], ros_context, kind).start()
    try:
        deadline = time.monotonic() + 10.0
        while len(got) < 3 and time.monotonic() < deadline:
            pub.publish(String(data=str(len(got))))
            time.sleep(0.05)
        assert len(got) >= 3
        assert spin.alive() and not spin.errors
    finally:
        spin.shutdown()
        talker.destroy_node()
        listener.destroy_node()
