"""A command vector as a TwistStamped: each dimension to the field `twist.fields` names."""
import pytest
from rclpy.parameter import Parameter

from vla_edge.nodes.chunk_executor import ChunkExecutor
from vla_edge.nodes.messages import command_message, s_to_stamp
from vla_edge.nodes.params import ParameterError
from vla_edge.nodes.twist_command import TwistLayout, command_twist, twist_layout
from vla_edge.nodes.watchdog_node import WatchdogNode


def params(fields, frame_id='base_link', command_type='twist_stamped'):
    return {'twist.fields': fields, 'twist.frame_id': frame_id, 'command_type': command_type}


def test_each_dimension_goes_to_its_field_and_the_rest_stay_zero():
    layout = twist_layout(params(['linear.x', '', 'angular.z'], 'odom'), 3)
    msg = layout.message([0.4, 0.9, -0.25], s_to_stamp(12.5))
    t = msg.twist
    assert (t.linear.x, t.angular.z) == (0.4, -0.25)
    assert (t.linear.y, t.linear.z, t.angular.x, t.angular.y) == (0.0, 0.0, 0.0, 0.0)  # 0.9: not
    assert msg.header.frame_id == 'odom'
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 500_000_000)


def test_command_message_uses_the_layout_and_defaults_to_linear_x_y():
    msg = command_message('twist_stamped', [0.1, 0.2, 1.0], 1.0, ['a', 'b', 'c'],
                          TwistLayout(('angular.z', 'linear.x', '')))
    assert (msg.twist.angular.z, msg.twist.linear.x, msg.twist.linear.y) == (0.1, 0.2, 0.0)
    plain = command_message('twist_stamped', [0.1, 0.2, 1.0], 1.0, ['a', 'b', 'c'])
    assert (plain.twist.linear.x, plain.twist.linear.y, plain.twist.angular.z) == (0.1, 0.2, 0.0)
    assert plain.header.frame_id == 'base_link'


@pytest.mark.parametrize('fields, dims, message', [
    (['linear.x', 'linear.y'], 3, 'one entry per command dimension'),
    (['linear.x', 'yaw', ''], 3, "['yaw'] are not twist fields"),
    (['linear.x', 'linear.x', ''], 3, 'no field twice'),
    (['', '', ''], 3, 'at least one'),
])
def test_a_mapping_that_cannot_be_meant_is_refused(fields, dims, message):
    with pytest.raises(ParameterError, match=message.replace('[', r'\[').replace(']', r'\]')):
        twist_layout(params(fields), dims)


def test_only_a_twist_command_type_reads_the_mapping():
    """A 6-joint arm on float64_multi_array must not have to spell out a twist."""
    assert command_twist(params(['linear.x'], command_type='float64_multi_array'), 6) is None
    assert command_twist(params(['linear.x', '']), 2) == TwistLayout(('linear.x', ''))


@pytest.mark.parametrize('node_class', [ChunkExecutor, WatchdogNode])
def test_both_nodes_that_can_send_a_twist_refuse_a_bad_mapping(ros_context, node_class):
    overrides = [Parameter('command_type', value='twist_stamped'),
                 Parameter('control_rate_hz', value=50.0),
                 Parameter('twist.fields', value=['linear.x', 'linear.y'])]
    if node_class is WatchdogNode:
        overrides = [o if o.name != 'control_rate_hz' else
                     Parameter('command.control_rate_hz', value=50.0) for o in overrides]
    with pytest.raises(ParameterError, match='one entry per command dimension'):
        node_class(context=ros_context, parameter_overrides=overrides)
