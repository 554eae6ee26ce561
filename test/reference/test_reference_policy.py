"""Regression guard on the shipped reference policy (ONNX FP32), 100 held-out seeds each.

A fixed 20 ms latency makes the runs deterministic; the README's figures come from `make demo`.
"""
import pytest

from vla_edge.sim.closed_loop import EvalConfig, RuntimePolicy, evaluate


@pytest.mark.parametrize('phrasing,swap,minimum', [
    ('canonical', False, 0.90),   # the instruction as trained
    ('canonical', True, 0.80),    # same scene, a different object named: it must follow the words
    ('heldout', False, 0.80),     # phrasings and synonyms never seen in training
])
def test_reference_policy_success(reference_runtime, phrasing, swap, minimum):
    cfg = EvalConfig(mode='sync', episodes=100, phrasing=phrasing, swap_object=swap,
                     latency_s=0.02)
    report = evaluate(RuntimePolicy(reference_runtime), cfg, progress=False)
    assert report.success_rate >= minimum, report.success_rate
