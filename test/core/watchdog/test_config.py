import pytest

from vla_edge.core.watchdog import (
    CommandGateConfig,
    FrameCheckConfig,
    MotionCheckConfig,
    WatchdogConfig,
    parameter_table,
)


def test_defaults_are_valid_and_round_trip_through_flat_parameters():
    cfg = WatchdogConfig()
    flat = cfg.flat()
    assert flat['frame.max_age_s'] == 0.5 and flat['command.velocity_dims'] == [0, 1]
    assert WatchdogConfig.from_params(flat) == cfg
    assert WatchdogConfig.from_params({}) == cfg


def test_every_parameter_is_described_and_its_default_is_in_range():
    table = parameter_table()
    names = [p.name for p in table]
    assert len(names) == len(set(names)) and len(names) > 40
    for p in table:
        assert p.description.strip(), p.name
        assert '.' in p.name
        if p.range is not None:
            assert p.range[0] <= p.default <= p.range[1], p.name
        if p.choices is not None:
            assert p.default in p.choices, p.name
        assert not isinstance(p.default, tuple), p.name   # ROS wants lists


def test_parameter_table_feeds_the_node_layer_specs():
    from vla_edge.nodes.params import Spec

    specs = [Spec(**p.as_spec_kwargs()) for p in parameter_table()]
    for spec in specs:
        spec.check(spec.default)
        spec.descriptor()
    ranged = {s.name: s for s in specs}['frame.max_age_s']
    assert ranged.descriptor().floating_point_range[0].to_value == 60.0


@pytest.mark.parametrize('params, match', [
    ({'frame.max_age_s': 0.0}, r"frame.max_age_s = 0.0 is outside the allowed range \[0.001, 60"),
    ({'frame.dark_max_fraction': 1.5}, r'frame.dark_max_fraction = 1.5 .*\[0.0, 1.0\]'),
    ({'motion.camera_mount': 'head'}, r"motion.camera_mount = 'head' must be one of"),
    ({'command.bounds_mode': 'ignore'}, r"command.bounds_mode = 'ignore' must be one of"),
    ({'frame.checks': ['dark', 'magic']}, r"frame.checks\[1\] = 'magic' must be one of"),
    ({'command.max_acceleration': [1.0, -2.0, 0.0]}, r'command.max_acceleration\[1\] = -2.0'),
    ({'command.value_min': [0.0, 0.0]}, r'command.value_min .* must have .*command_dim = 3'),
    ({'command.value_min': [2.0, -1.0, -1.0]}, r'value_min\[0\] = 2.0 must not exceed'),
    ({'command.velocity_dims': [0, 5]}, r'command.velocity_dims = \[0, 5\]'),
    ({'frame.min_bad_frames': 2.5}, r'frame.min_bad_frames = 2.5 must be of type int'),
    ({'latch.auto_clear_after_s': -1.0}, r'latch.auto_clear_after_s = -1.0'),
    ({'motion.still_command_max': 0.5}, r'still_command_max = 0.5 must be below'),
    ({'motion.speed_dims': [0, 7]}, r'motion.speed_dims = \[0, 7\]'),
    ({'frame.nonsense': 1}, r"unknown watchdog parameter 'frame.nonsense'"),
])
def test_bad_values_are_refused_naming_parameter_value_and_range(params, match):
    with pytest.raises(ValueError, match=match):
        WatchdogConfig.from_params(params)


def test_ints_become_floats_and_lists_become_tuples():
    cfg = FrameCheckConfig(max_age_s=1, checks=['dark'])
    assert isinstance(cfg.max_age_s, float) and cfg.checks == ('dark',)
    gate = CommandGateConfig(value_max=[2, 2, 2])
    assert gate.value_max == (2.0, 2.0, 2.0)
    assert MotionCheckConfig(flow_max_side=64.0).flow_max_side == 64


def test_ros_arrays_are_accepted():
    import array

    cfg = WatchdogConfig.from_params({'command.max_jerk': array.array('d', [1.0, 2.0, 0.0])})
    assert cfg.command.max_jerk == (1.0, 2.0, 0.0)
