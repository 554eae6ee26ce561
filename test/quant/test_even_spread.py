from vla_edge.quant.even_spread import evenly_spread


def test_keeps_everything_up_to_the_limit_or_without_one():
    assert evenly_spread([1, 2, 3], 3) == [1, 2, 3]
    assert evenly_spread([1, 2, 3], 0) == [1, 2, 3]


def test_spreads_evenly_and_keeps_both_ends():
    items = list(range(101))
    assert evenly_spread(items, 5) == [0, 25, 50, 75, 100]
    assert len(set(evenly_spread(items, 64))) == 64
