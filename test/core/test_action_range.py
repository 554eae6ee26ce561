"""ActionRange: values no action of the model can have are named, NaN included."""
import numpy as np
import pytest

from vla_edge.core.action_range import MAX_ACTION_STD, ActionRange


def test_values_within_the_limit_pass_and_beyond_it_are_named():
    r = ActionRange([0.0, 1.0], [0.5, 2.0])
    assert r.problem(np.array([[0.5 * MAX_ACTION_STD, 1.0 - 2.0 * MAX_ACTION_STD]])) is None
    problem = r.problem(np.array([[0.0, 1.0 + 2.0 * MAX_ACTION_STD * 1.01]]))
    assert problem is not None and '101 standard deviations' in problem


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_named_as_such(bad):
    assert ActionRange([0.0], [1.0]).problem(np.array([[bad]])) == 'it has NaN/inf values'


def test_the_largest_float_does_not_overflow_into_a_warning():
    with np.errstate(all='raise'):   # any overflow warning would raise here
        assert 'standard deviations' in ActionRange([0.0], [0.5]).problem(np.array([[1e308]]))


def test_an_empty_chunk_has_no_problem():
    assert ActionRange([0.0], [1.0]).problem(np.zeros((0, 1))) is None


def test_the_models_statistics_follow_the_names_asked_for(reference_model_dir):
    from vla_edge.core.manifest import load_manifest

    manifest = load_manifest(reference_model_dir, verify_hashes=False)
    names = [str(n) for n in manifest.raw['action_names']]
    in_order = ActionRange.of_model(manifest, names)
    reversed_ = ActionRange.of_model(manifest, names[::-1])
    assert np.array_equal(reversed_.mean, in_order.mean[::-1])
    assert np.array_equal(reversed_.std, in_order.std[::-1])
    assert np.array_equal(ActionRange.of_model(manifest).std, in_order.std)


def test_mismatched_statistics_are_refused():
    with pytest.raises(ValueError, match='one length'):
        ActionRange([0.0, 1.0], [1.0])
