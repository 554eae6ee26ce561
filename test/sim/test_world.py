import numpy as np
import pytest

from vla_edge.sim.scenario import build_world, sample_episode
from vla_edge.sim.tasks import Task
from vla_edge.sim.world import APERTURE_EMPTY, APERTURE_HOLDING, APERTURE_OPEN, SimConfig


def _world(seed=3):
    cfg = SimConfig(recovery_fraction=0.0)
    return build_world(sample_episode(seed, cfg), cfg)


def test_velocity_is_clipped_and_scaled():
    w = _world()
    start = w.gripper_pos.copy()
    w.step(np.array([5.0, 0.0, -1.0]))
    assert w.gripper_pos[0] - start[0] == pytest.approx(w.config.max_speed * w.config.dt_s)
    assert w.gripper_vel[0] == pytest.approx(w.config.max_speed)


def test_gripper_stays_in_workspace():
    w = _world()
    for _ in range(500):
        w.step(np.array([-1.0, -1.0, -1.0]))
    assert np.all(w.gripper_pos >= w.config.workspace_margin - 1e-12)


def test_grasp_carry_and_place_gives_success():
    w = _world()
    task = Task('tea_bag', 'mug')
    w.gripper_pos = w.items['tea_bag'].pos.copy()
    w.step(np.array([0.0, 0.0, 1.0]))
    assert w.held == 'tea_bag' and w.aperture == APERTURE_HOLDING
    w.gripper_pos = w.items['mug'].pos.copy()
    w.step(np.array([0.0, 0.0, 1.0]))
    assert np.allclose(w.items['tea_bag'].pos, w.gripper_pos)
    assert not w.is_success(task)   # still held
    w.step(np.array([0.0, 0.0, -1.0]))
    assert w.items['tea_bag'].inside == 'mug' and w.aperture == APERTURE_OPEN
    assert w.is_success(task)
    assert not w.is_success(Task('tea_bag', 'bowl'))


def test_closing_far_from_objects_grasps_nothing():
    w = _world()
    w.gripper_pos = np.array([0.5, 0.5])
    for item in w.items.values():
        item.pos = np.array([0.9, 0.9])
    w.step(np.array([0.0, 0.0, 1.0]))
    assert w.held is None and w.aperture == APERTURE_EMPTY


def test_dropping_outside_a_container_is_not_success():
    w = _world()
    w.gripper_pos = w.items['red_block'].pos.copy()
    w.step(np.array([0.0, 0.0, 1.0]))
    w.gripper_pos = np.array([0.02, 0.02]) + w.config.workspace_margin
    w.step(np.array([0.0, 0.0, -1.0]))
    assert w.items['red_block'].inside is None
    assert not w.is_success(Task('red_block', 'mug'))


@pytest.mark.parametrize('bad', [[np.nan, 0, 0], [0, np.inf, 0], [0, 0], 'x'])
def test_bad_actions_are_rejected(bad):
    w = _world()
    with pytest.raises((ValueError, TypeError)):
        w.step(np.asarray(bad, dtype=object) if bad == 'x' else np.asarray(bad, dtype=float))


@pytest.mark.parametrize('kwargs', [dict(image_size=8), dict(control_rate_hz=0.0),
                                    dict(recovery_fraction=1.5), dict(min_distractors=3,
                                                                      max_distractors=1)])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        SimConfig(**kwargs)


def test_grip_deadband_keeps_the_gripper_state():
    w = _world()
    w.gripper_pos = w.items['tea_bag'].pos.copy()
    w.step(np.array([0.0, 0.0, 0.3]))
    assert not w.gripper_closed            # inside the deadband: still open
    w.step(np.array([0.0, 0.0, 0.9]))
    assert w.held == 'tea_bag'
    w.step(np.array([0.0, 0.0, -0.3]))
    assert w.held == 'tea_bag'             # inside the deadband: still closed
    w.step(np.array([0.0, 0.0, -0.9]))
    assert w.held is None


def test_a_position_target_is_approached_at_up_to_top_speed():
    cfg = SimConfig(recovery_fraction=0.0, command_interface='position')
    w = build_world(sample_episode(3, cfg), cfg)
    start = w.gripper_pos.copy()
    w.step(np.array([start[0] + 0.004, start[1], -1.0]))     # within one step: reached
    assert np.allclose(w.gripper_pos, start + [0.004, 0.0])
    w.step(np.array([start[0] + 1.0, start[1] + 1.0, -1.0]))  # far: top speed, toward it
    moved = w.gripper_pos - (start + [0.004, 0.0])
    assert np.linalg.norm(moved) == pytest.approx(cfg.max_step_distance)
    assert moved[0] > 0 and moved[1] > 0


def test_the_expert_moves_the_same_through_either_command_interface():
    from vla_edge.sim.env import TeaTableEnv

    paths = {}
    for interface in ('velocity', 'position'):
        env = TeaTableEnv(SimConfig(command_interface=interface))
        env.reset(1_000_003)
        path = []
        while not env.success and not env.timed_out:
            env.step(env.expert_action())
            path.append(env.world.gripper_pos.copy())
        paths[interface] = np.array(path)
        assert env.success
    assert np.allclose(paths['velocity'], paths['position'], atol=1e-9)


def test_an_unknown_command_interface_is_refused():
    with pytest.raises(ValueError, match='command_interface'):
        SimConfig(command_interface='torque')


def test_the_world_keeps_what_the_gripper_did():
    """Missed grasps, the items picked up and where each let-go landed: what a retry count is
    made of (TeaTableEnv.retries)."""
    w = _world()
    w.gripper_pos = np.array([0.5, 0.5])
    spots = {'red_block': (0.9, 0.9), 'mug': (0.2, 0.2)}
    for name, item in w.items.items():
        item.pos = np.array(spots.get(name, (0.9, 0.1)))
    w.step(np.array([0.0, 0.0, 1.0]))          # closes on nothing
    w.step(np.array([0.0, 0.0, -1.0]))         # opens empty: no let-go to record
    w.gripper_pos = w.items['red_block'].pos.copy()
    w.step(np.array([0.0, 0.0, 1.0]))
    w.gripper_pos = np.array([0.5, 0.5])
    w.step(np.array([0.0, 0.0, -1.0]))         # lets go on the bare table
    w.step(np.array([0.0, 0.0, 1.0]))          # picks it up again where it fell
    w.gripper_pos = w.items['mug'].pos.copy()
    w.step(np.array([0.0, 0.0, -1.0]))
    assert w.missed_grasps == 1
    assert w.grasped == ['red_block', 'red_block']
    assert w.released == [('red_block', None), ('red_block', 'mug')]
