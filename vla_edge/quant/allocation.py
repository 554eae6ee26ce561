"""Choose a precision per stage: least drift within a latency budget, or least latency within a
drift budget. Exhaustive over the per-stage options (a handful each, three stages).

The policy-step latency of a mix is additive and exact up to noise: sum over stages of calls per
step x median seconds per call (the action expert runs once per denoising step). The drift of a mix
is estimated as the sum of each stage's one-at-a-time drift, an approximation the pipeline checks by
measuring the chosen mix in closed loop. Candidates that are not faster than FP32 (by `min_gain`)
or that lose more success than allowed are never chosen, and each exclusion is reported.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    """One measured candidate of one stage."""

    stage: str
    name: str
    latency_s: float          # median per call
    drift: float              # one-at-a-time mean drift vs FP32 (0 for FP32)
    success_rate: float = 1.0


@dataclass
class Mix:
    """One precision per stage, with its policy-step latency and estimated drift."""

    choice: dict[str, str]
    latency_s: float
    drift: float


@dataclass
class Allocation:
    """The chosen mix, every evaluated mix (for the Pareto plot) and why."""

    chosen: Mix
    fp32: Mix
    mixes: list[Mix]
    pareto: list[Mix]
    decisions: list[str] = field(default_factory=list)
    excluded: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.fp32.latency_s / self.chosen.latency_s


def allocate(options: dict[str, list[Option]], calls: dict[str, int],
             latency_budget_s: float | None = None, drift_budget: float | None = None,
             min_gain: float = 0.02, max_success_drop: float = 0.1) -> Allocation:
    """Pick one option per stage; `options[stage]` must contain one named 'fp32'."""
    if (latency_budget_s is None) == (drift_budget is None):
        raise ValueError('give exactly one of latency_budget_s and drift_budget')
    fp32 = {s: next((o for o in opts if o.name == 'fp32'), None) for s, opts in options.items()}
    missing = [s for s, o in fp32.items() if o is None]
    if missing:
        raise ValueError(f'stage(s) {missing} have no fp32 option')
    decisions, excluded = [], {}
    eligible: dict[str, list[Option]] = {}
    for stage, opts in options.items():
        base = fp32[stage]
        eligible[stage] = [base]
        for o in opts:
            if o.name == 'fp32':
                continue
            ratio = o.latency_s / base.latency_s
            if ratio > 1.0 - min_gain:
                why = (f'slower than FP32 (x{ratio:.2f} latency)' if ratio >= 1.0 else
                       f'not faster than FP32 by {min_gain:.0%} (x{ratio:.2f})')
            elif base.success_rate - o.success_rate > max_success_drop + 1e-9:
                why = (f'loses success ({o.success_rate:.0%} vs FP32 {base.success_rate:.0%}, '
                       f'allowed drop {max_success_drop:.0%})')
            else:
                eligible[stage].append(o)
                continue
            excluded.setdefault(stage, {})[o.name] = why
            decisions.append(f'{stage}: never {o.name}: {why}')
    stages = list(options)
    mixes = []
    for combo in itertools.product(*(eligible[s] for s in stages)):
        mixes.append(Mix({o.stage: o.name for o in combo},
                         sum(calls.get(o.stage, 1) * o.latency_s for o in combo),
                         sum(o.drift for o in combo)))
    base_mix = next(m for m in mixes if all(v == 'fp32' for v in m.choice.values()))
    if latency_budget_s is not None:
        feasible = [m for m in mixes if m.latency_s <= latency_budget_s]
        order = ('drift', 'latency_s')
        rule = f'least drift with policy step <= {latency_budget_s * 1e3:.2f} ms'
    else:
        feasible = [m for m in mixes if m.drift <= drift_budget]
        order = ('latency_s', 'drift')
        rule = f'least latency with estimated drift <= {drift_budget:g}'
    if feasible:
        chosen = min(feasible, key=lambda m: tuple(getattr(m, k) for k in order))
    else:
        chosen = min(mixes, key=lambda m: (m.latency_s, m.drift)) if latency_budget_s \
            else base_mix
        decisions.append(f'no mix meets the budget ({rule}); falling back to the '
                         + ('fastest mix' if latency_budget_s else 'FP32 model'))
    stage_lines = []
    for stage in stages:
        name = chosen.choice[stage]
        o = next(x for x in eligible[stage] if x.name == name)
        ratio = o.latency_s / fp32[stage].latency_s
        alts = [x for x in eligible[stage] if x.name != name]
        why = (f'{rule}: x{ratio:.2f} latency per call x {calls.get(stage, 1)} call(s)/step, '
               f'drift {o.drift:.4f}')
        if alts:
            why += '; eligible alternatives ' + ', '.join(
                f'{x.name} (x{x.latency_s / fp32[stage].latency_s:.2f}, drift {x.drift:.4f})'
                for x in alts)
        else:
            why += '; no faster candidate was eligible'
        stage_lines.append(f'{stage}: {name}: {why}')
    return Allocation(chosen, base_mix, mixes, pareto_front(mixes), stage_lines + decisions,
                      excluded)


def pareto_front(mixes: list[Mix]) -> list[Mix]:
    """Mixes that no other mix beats on both latency and drift, by latency."""
    front, best = [], float('inf')
    for m in sorted(mixes, key=lambda m: (m.latency_s, m.drift)):
        if m.drift < best:
            front.append(m)
            best = m.drift
    return front
