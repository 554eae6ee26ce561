"""Training-time real-time chunking: which actions are committed, and what the loss sees."""
import pytest
import torch

from vla_edge.reference.train import TrainConfig, flow_times, train


def test_committed_prefixes_are_clean_and_left_out_of_the_loss():
    torch.manual_seed(0)
    cfg = TrainConfig(committed_prefix_fraction=0.5, max_committed_actions=7)
    tau, free = flow_times(4000, 50, cfg)
    assert tau.shape == free.shape == (4000, 50)
    committed = (free == 0).sum(1)
    # The committed actions are the first d, fed at tau = 1, with d in 1..7 or none.
    for row in range(4000):
        d = int(committed[row])
        assert torch.all(free[row, :d] == 0) and torch.all(free[row, d:] == 1)
        assert torch.all(tau[row, :d] == 1.0)
        assert torch.all(tau[row, d:] == tau[row, -1])
    assert int(committed.max()) == 7 and set(committed.unique().tolist()) == set(range(8))
    assert 0.45 < float((committed > 0).float().mean()) < 0.55


def test_no_prefix_training_is_one_flow_time_per_sample():
    torch.manual_seed(0)
    tau, free = flow_times(100, 50, TrainConfig(committed_prefix_fraction=0.0))
    assert torch.all(free == 1)
    assert torch.all(tau == tau[:, :1])


@pytest.mark.parametrize('field, value, message', [
    ('committed_prefix_fraction', 1.5, r'committed_prefix_fraction must be in \[0, 1\]'),
    ('max_committed_actions', 50, r'max_committed_actions must be in \[1, 49\]'),
    ('max_committed_actions', 0, r'max_committed_actions must be in \[1, 49\]'),
])
def test_bad_prefix_settings_are_refused_before_any_work(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        train(TrainConfig(**{field: value}), tmp_path)


def test_demonstrations_are_velocity_actions_only():
    from vla_edge.reference.dataset import collect_demonstrations
    from vla_edge.sim.world import SimConfig

    with pytest.raises(ValueError, match='velocity actions'):
        collect_demonstrations(1, config=SimConfig(command_interface='position'))
