"""A one-glance PNG of how chunks flowed: control ticks, inference intervals, the action trace."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_timelines(traces: dict[str, dict], path: Path, titles: dict[str, str] | None = None
                   ) -> Path:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = [k for k, v in traces.items() if v]
    fig, axes = plt.subplots(3, len(names), figsize=(5.2 * len(names), 7.5), squeeze=False,
                             sharex='col', gridspec_kw={'height_ratios': [1, 1, 2]})
    for col, name in enumerate(names):
        tr = traces[name]
        t0, rate = tr['t0'], tr['rate_hz']
        times = np.array([t for t, _ in tr['executed']]) - t0
        held = np.array([a is None for _, a in tr['executed']])
        acts = np.array([a if a is not None else [np.nan] * 3 for _, a in tr['executed']])
        ax = axes[0][col]
        ax.set_title((titles or {}).get(name, name), fontsize=10)
        if len(times) > 1:
            ax.plot(times[1:], np.diff(times) * 1e3, '.', ms=2, color='tab:gray')
            ax.axhline(1e3 / rate, color='k', lw=0.8, ls='--')
        if held.any():
            ax.plot(times[held], np.full(held.sum(), 1e3 / rate), 'rx', ms=4,
                    label='held (no action)')
            ax.legend(fontsize=7, loc='upper right')
        ax.set_ylabel('tick period [ms]')
        ax = axes[1][col]
        arrivals = [t - t0 for k, t in tr['events'] if k == 'arrival']
        for i, (r, a) in enumerate(inference_intervals(tr['events'])):
            ax.barh(i % 2, a - r, left=r - t0, height=0.6, color='tab:blue')
        ax.set_yticks([])
        ax.set_ylabel('inference')
        ax = axes[2][col]
        for d, label in enumerate(tr.get('names') or ('vx', 'vy', 'grip')):
            ax.plot(times, acts[:, d], lw=1.2, label=label)
        for a in arrivals:
            ax.axvline(a, color='k', lw=0.6, alpha=0.4)
        ax.set_ylabel('command (chunk switches: grey lines)')
        ax.set_xlabel('time since episode start [s]')
        ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def inference_intervals(events: list[tuple[str, float]]) -> list[tuple[float, float]]:
    """(request, arrival) per chunk, each arrival paired with the newest request before it.

    Not zip(requests, arrivals): after a timed-out request is sent again, or a chunk discarded
    at a reset, the two lists no longer line up one to one."""
    out, pending = [], None
    for kind, t in sorted(events, key=lambda e: e[1]):
        if kind == 'request':
            pending = t
        elif kind == 'arrival' and pending is not None:
            out.append((pending, t))
            pending = None
    return out
