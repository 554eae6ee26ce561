"""Which executor spins the composed pipeline, and that either kind really delivers messages."""
import time

import pytest
from std_msgs.msg import String

from vla_edge.nodes.isolated_executors import (
    IsolatedExecutors,
    events_executor_available,
    executor_kind_for,
    forced_executor_kind,
    make_executor,
    shared_executor_kind,
)


class _Plain:
    """A node without a preference."""


class _Events:
    preferred_executor = 'events'


def test_nodes_spin_on_the_kind_they_prefer_unless_the_environment_forces_one(monkeypatch):
    monkeypatch.delenv('VLA_EDGE_EXECUTOR', raising=False)
    assert forced_executor_kind() is None
    assert executor_kind_for(_Plain()) == 'single'
    # rclpy without an EventsExecutor (Humble): the node falls back, nothing fails
    assert executor_kind_for(_Events()) == ('events' if events_executor_available() else 'single')
    monkeypatch.setenv('VLA_EDGE_EXECUTOR', ' Single ')
    assert forced_executor_kind() == 'single'
    assert executor_kind_for(_Events()) == 'single'
    monkeypatch.setenv('VLA_EDGE_EXECUTOR', 'events')
    assert executor_kind_for(_Plain()) == 'events'


def test_the_pipeline_nodes_preferences(monkeypatch):
    """vla_node gains from the EventsExecutor; the chunk executor's control timer must fire in
    its own (SCHED_FIFO) spin thread, which only the SingleThreadedExecutor does."""
    from vla_edge.nodes.chunk_executor import ChunkExecutor
    from vla_edge.nodes.vla_node import VlaNode
    from vla_edge.nodes.watchdog_node import WatchdogNode

    assert VlaNode.preferred_executor == 'events'
    assert getattr(ChunkExecutor, 'preferred_executor', 'single') == 'single'
    assert getattr(WatchdogNode, 'preferred_executor', 'single') == 'single'


def test_nodes_sharing_one_executor_get_the_kind_they_agree_on(monkeypatch):
    monkeypatch.delenv('VLA_EDGE_EXECUTOR', raising=False)
    assert shared_executor_kind([_Plain(), _Plain()]) == 'single'
    assert shared_executor_kind([_Events(), _Plain()]) == 'single'
    assert shared_executor_kind([_Events()]) == executor_kind_for(_Events())


def test_an_unknown_executor_kind_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv('VLA_EDGE_EXECUTOR', 'multi')
    with pytest.raises(ValueError, match="'events', 'single'"):
        forced_executor_kind()
    with pytest.raises(ValueError, match="'events', 'single'"):
        executor_kind_for(_Plain())
    with pytest.raises(ValueError, match='executor kind'):
        make_executor('multi')
    monkeypatch.delenv('VLA_EDGE_EXECUTOR')
    odd = _Plain()
    odd.preferred_executor = 'multi'
    with pytest.raises(ValueError, match='preferred_executor'):
        executor_kind_for(odd)


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
