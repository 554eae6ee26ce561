import pytest

from vla_edge.quant.allocation import Option, allocate, pareto_front

CALLS = {'vision': 1, 'expert': 10}


def options():
    return {
        'vision': [Option('vision', 'fp32', 1.0e-3, 0.0),
                   Option('vision', 'int8_slow', 2.0e-3, 0.001),    # slower: never chosen
                   Option('vision', 'int8_fast', 0.5e-3, 0.002)],
        'expert': [Option('expert', 'fp32', 1.0e-3, 0.0),
                   Option('expert', 'int8', 0.6e-3, 0.05),
                   Option('expert', 'fp16_slow', 1.1e-3, 0.0),
                   Option('expert', 'broken', 0.3e-3, 0.001, success_rate=0.5)],
    }


def test_never_picks_a_slower_candidate_even_with_a_loose_budget():
    alloc = allocate(options(), CALLS, drift_budget=10.0)
    assert alloc.chosen.choice['vision'] != 'int8_slow'
    assert alloc.chosen.choice['expert'] not in ('fp16_slow', 'broken')
    assert 'slower than FP32' in alloc.excluded['vision']['int8_slow']
    assert 'loses success' in alloc.excluded['expert']['broken']
    assert any('never int8_slow' in d for d in alloc.decisions)
    assert alloc.chosen.choice == {'vision': 'int8_fast', 'expert': 'int8'}
    assert alloc.speedup == pytest.approx(11.0 / 6.5)


def test_respects_the_latency_budget_with_least_drift():
    # 11 ms FP32; 10.5 ms: only the vision encoder may go 8-bit
    alloc = allocate(options(), CALLS, latency_budget_s=10.6e-3)
    assert alloc.chosen.latency_s <= 10.6e-3
    assert alloc.chosen.choice == {'vision': 'int8_fast', 'expert': 'fp32'}


def test_respects_the_drift_budget_with_least_latency():
    alloc = allocate(options(), CALLS, drift_budget=0.01)
    assert alloc.chosen.drift <= 0.01
    assert alloc.chosen.choice == {'vision': 'int8_fast', 'expert': 'fp32'}


def test_infeasible_drift_budget_falls_back_to_fp32():
    alloc = allocate(options(), CALLS, drift_budget=-1.0)
    assert set(alloc.chosen.choice.values()) == {'fp32'}
    assert any('no mix meets the budget' in d for d in alloc.decisions)


def test_needs_exactly_one_budget():
    with pytest.raises(ValueError):
        allocate(options(), CALLS)


def test_pareto_front_is_monotone():
    alloc = allocate(options(), CALLS, drift_budget=1.0)
    front = pareto_front(alloc.mixes)
    assert [m.latency_s for m in front] == sorted(m.latency_s for m in front)
    assert all(a.drift > b.drift for a, b in zip(front, front[1:]))
