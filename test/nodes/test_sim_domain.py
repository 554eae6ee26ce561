"""The simulated pipeline's domain: localhost only, and none that another node is on."""
import os

import pytest
import rclpy
from rclpy.node import Node

from vla_edge.nodes.sim_domain import foreign_nodes, sim_context

SPARE_DOMAIN = 231   # no test uses it: the conftest's domains are 100-229


def test_a_domain_with_another_node_on_it_is_skipped(ros_context):
    taken = ros_context.get_domain_id()
    robot = Node('real_robot_driver', context=ros_context, namespace='arm')
    ctx = None
    try:
        ctx = sim_context([taken, SPARE_DOMAIN])
        assert ctx.get_domain_id() == SPARE_DOMAIN
        assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
        assert foreign_nodes(ctx, settle_s=0.2) == []   # the probe is gone too
    finally:
        if ctx is not None:
            rclpy.try_shutdown(context=ctx)
        robot.destroy_node()


def test_every_domain_in_use_is_an_error_naming_what_is_there(ros_context):
    robot = Node('real_robot_driver', context=ros_context)
    try:
        with pytest.raises(RuntimeError, match=rf'no free ROS domain.*'
                                               rf'{ros_context.get_domain_id()} '
                                               r'\(/real_robot_driver\)'):
            sim_context([ros_context.get_domain_id()])
    finally:
        robot.destroy_node()


def test_an_empty_domain_is_taken_at_once():
    ctx = sim_context([SPARE_DOMAIN], settle_s=0.2)
    try:
        assert ctx.ok() and ctx.get_domain_id() == SPARE_DOMAIN
    finally:
        rclpy.try_shutdown(context=ctx)
