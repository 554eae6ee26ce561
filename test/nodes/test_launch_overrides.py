"""Launch arguments override the parameter files only when given."""
import pytest

from vla_edge.nodes.launch_overrides import given_overrides

NAMES = ('model_dir', 'instruction', 'camera_topic', 'use_compressed')


def test_empty_arguments_leave_the_parameter_files_values():
    assert given_overrides({name: '' for name in NAMES}, NAMES) == {}
    assert given_overrides({'camera_topic': '  '}, NAMES) == {}


def test_given_arguments_override_with_their_types():
    got = given_overrides({'model_dir': '/opt/m', 'instruction': 'pick the cup',
                           'camera_topic': '/wrist/image_raw', 'use_compressed': 'True'}, NAMES)
    assert got == {'model_dir': '/opt/m', 'instruction': 'pick the cup',
                   'camera_topic': '/wrist/image_raw', 'use_compressed': True}
    assert given_overrides({'use_compressed': 'false'}, NAMES) == {'use_compressed': False}


def test_only_the_asked_names_are_passed_on():
    assert given_overrides({'model_dir': '/opt/m', 'instruction': 'x'}, ('model_dir',)) == \
        {'model_dir': '/opt/m'}


def test_a_boolean_that_is_not_one_is_refused_by_name():
    with pytest.raises(ValueError, match='use_compressed.*expected true or false'):
        given_overrides({'use_compressed': 'yes please'}, NAMES)


def test_robot_topics_are_the_arguments_or_their_own_names():
    from vla_edge.nodes.launch_overrides import robot_topic_remaps

    assert robot_topic_remaps({'command_topic': '/ctrl/commands', 'joint_states_topic': ' '}) == \
        {'command': '/ctrl/commands', 'joint_states': 'joint_states'}
    assert robot_topic_remaps({}) == {'command': 'command', 'joint_states': 'joint_states'}
