"""The executor's committed prefix placed on the chunk planned from an observation."""
import numpy as np
import pytest

from vla_edge.core.committed_prefix import align_prefix

RATE, HORIZON = 50.0, 49


def _prefix(n):
    return np.arange(n, dtype=float)[:, None] * np.ones((1, 3))


def test_rows_before_the_request_are_pinned_to_the_first_committed_action():
    out = align_prefix(_prefix(5), request_stamp_s=10.1, observation_stamp_s=10.0,
                       rate_hz=RATE, horizon=HORIZON)
    assert out.shape == (10, 3)                     # 5 pinned rows (0.1 s), then the prefix
    np.testing.assert_array_equal(out[:, 0], [0, 0, 0, 0, 0, 0, 1, 2, 3, 4])


def test_a_frame_newer_than_the_request_cuts_the_past_rows():
    out = align_prefix(_prefix(5), 10.0, 10.04, RATE, HORIZON)
    np.testing.assert_array_equal(out[:, 0], [2, 3, 4])
    assert align_prefix(_prefix(2), 10.0, 10.04, RATE, HORIZON) is None   # all of it past


def test_the_result_never_exceeds_the_horizon():
    assert align_prefix(_prefix(40), 10.5, 10.0, RATE, HORIZON).shape == (HORIZON, 3)


@pytest.mark.parametrize('gap_s', [HORIZON / RATE, 1e5, 2.0**31])
def test_a_prefix_starting_beyond_the_chunk_is_refused_without_building_it(gap_s):
    """1e5 s once built a 5-million-row array; 2^31 s asked for 2.3 TiB."""
    with pytest.raises(ValueError, match='starts beyond the chunk'):
        align_prefix(_prefix(5), 10.0 + gap_s, 10.0, RATE, HORIZON)
