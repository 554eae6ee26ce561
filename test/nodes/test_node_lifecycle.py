"""Nodes composed into a larger stack: a refused constructor leaves nothing behind, statuses on
the shared /diagnostics name their namespace, a replaced sim robot does not haunt the session."""
import gc

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

from vla_edge.core.polling import wait_until
from vla_edge.nodes.chunk_executor import ChunkExecutor
from vla_edge.nodes.isolated_executors import IsolatedExecutors
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.sim_nodes import SimRobot, SimSession
from vla_edge.nodes.vla_node import VlaNode
from vla_edge.nodes.watchdog_node import WatchdogNode


def names_in_graph(node):
    return {f'{ns.rstrip("/")}/{name}' for name, ns in node.get_node_names_and_namespaces()}


@pytest.mark.parametrize('make, bad, full_name', [
    (ChunkExecutor, Parameter('velocity_dims', value=[7]), '/arm/chunk_executor'),
    (WatchdogNode, Parameter('joint_names', value=['vx']), '/arm/watchdog'),
    (VlaNode, Parameter('state_position_joints', value=['x', 'x']), '/arm/vla_node'),
])
def test_a_refused_constructor_leaves_no_node_in_the_graph(ros_context, make, bad, full_name):
    """Before: the half-built node stayed registered until the cyclic GC ran (here: never, it is
    off), and collecting it later cut a retried node of that name off /rosout."""
    observer = rclpy.create_node('observer', context=ros_context)
    gc.disable()
    try:
        with pytest.raises((ParameterError, ValueError)):
            make(context=ros_context, namespace='arm', parameter_overrides=[bad])
        assert full_name not in names_in_graph(observer)
        retried = make(context=ros_context, namespace='arm')
        assert full_name in names_in_graph(observer)
        retried.destroy_node()
    finally:
        gc.enable()
        observer.destroy_node()


def test_diagnostics_name_the_namespace(ros_context):
    """/diagnostics is absolute: two composed pipelines must not report under one name."""
    nodes = [ChunkExecutor(context=ros_context, namespace=ns, parameter_overrides=[
        Parameter('diagnostics_period_s', value=0.05)]) for ns in ('robot1', 'robot2')]
    io = rclpy.create_node('io', context=ros_context)
    names = set()
    io.create_subscription(DiagnosticArray, '/diagnostics',
                           lambda m: names.update((s.name, s.hardware_id) for s in m.status), 50)
    spin = IsolatedExecutors([*nodes, io], ros_context).start()
    try:
        assert wait_until(lambda: len(names) >= 2, 5.0), names
        assert names == {('robot1/chunk_executor: chunk executor', ''),
                         ('robot2/chunk_executor: chunk executor', '')}
    finally:
        spin.shutdown()
        for n in (*nodes, io):
            n.destroy_node()


def test_a_replaced_sim_robot_leaves_the_session(ros_context):
    """A destroyed robot still listening to the shared session failed the next reset (its
    publisher was gone), for the robot that replaced it."""
    session = SimSession()
    SimRobot(session, context=ros_context).destroy_node()
    assert session.listeners == []
    robot = SimRobot(session, context=ros_context)
    io = rclpy.create_node('io', context=ros_context)
    got = []
    io.create_subscription(String, 'instruction', got.append,
                           QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    spin = IsolatedExecutors([robot, io], ros_context).start()
    try:
        instruction = robot.start_episode()
        assert wait_until(lambda: got and got[-1].data == instruction, 5.0)
    finally:
        spin.shutdown()
        robot.destroy_node()
        io.destroy_node()
