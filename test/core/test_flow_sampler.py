import numpy as np
import pytest

from vla_edge.core.flow_sampler import denoise


def test_straight_flow_reaches_its_target_exactly():
    target = np.linspace(-1, 1, 30, dtype=np.float32).reshape(1, 10, 3)
    noise = np.random.default_rng(0).standard_normal(target.shape).astype(np.float32)

    def velocity(x, tau):   # the exact velocity of the straight path noise -> target
        return (target - x) / (1.0 - tau[..., None])

    out = denoise(velocity, noise, steps=10)
    assert np.allclose(out, target, atol=1e-5)


def test_inpainted_prefix_is_kept_exactly_and_steers_the_rest():
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((1, 8, 2)).astype(np.float32)
    prefix = np.full((3, 2), 0.7, np.float32)
    seen_prefix_rows = []

    def velocity(x, tau):
        seen_prefix_rows.append(x[0, :3].copy())
        return np.zeros_like(x)

    out = denoise(velocity, noise, steps=4, prefix=prefix)
    assert np.array_equal(out[0, :3], prefix)
    # At each step the prefix rows sit on the straight path from their noise to the prefix.
    for i, rows in enumerate(seen_prefix_rows):
        tau = i / 4
        assert np.allclose(rows, (1 - tau) * noise[0, :3] + tau * prefix)
    assert np.array_equal(out[0, 3:], noise[0, 3:])


def test_clean_prefix_is_fed_as_data_at_tau_one():
    """A model trained with committed prefixes sees them as in training: clean, tau = 1."""
    rng = np.random.default_rng(2)
    noise = rng.standard_normal((1, 8, 2)).astype(np.float32)
    prefix = np.full((3, 2), -0.4, np.float32)
    seen = []

    def velocity(x, tau):
        seen.append((x[0].copy(), tau[0].copy()))
        return np.ones_like(x)

    out = denoise(velocity, noise, steps=5, prefix=prefix, prefix_mode='clean')
    assert len(seen) == 5
    for i, (x, tau) in enumerate(seen):
        assert np.array_equal(x[:3], prefix)
        assert np.array_equal(tau[:3], np.ones(3, np.float32))
        assert np.allclose(tau[3:], i / 5)
    assert np.array_equal(out[0, :3], prefix)
    assert np.allclose(out[0, 3:], noise[0, 3:] + 1.0)   # the free rows moved with the velocity


def test_without_a_prefix_every_action_shares_the_step_time():
    taus = []
    denoise(lambda x, tau: taus.append(tau.copy()) or np.zeros_like(x),
            np.zeros((2, 6, 3), np.float32), steps=3, prefix_mode='clean')
    assert [t.shape for t in taus] == [(2, 6)] * 3
    for i, t in enumerate(taus):
        assert np.allclose(t, i / 3)


def test_unknown_prefix_mode_rejected():
    with pytest.raises(ValueError, match='prefix_mode'):
        denoise(lambda x, t: x, np.zeros((1, 2, 2)), steps=1, prefix_mode='soft')


def test_zero_steps_rejected():
    with pytest.raises(ValueError):
        denoise(lambda x, t: x, np.zeros((1, 2, 2)), steps=0)
