"""PNG overlay of golden vs new trajectories, one row per joint, for a replay comparison.

Each row shows the executed commands of both runs over time (golden solid, new dashed) and,
on a second axis, their absolute error: drift reads straight off the picture. When a run has no
commands, the first action of every chunk is drawn against its observation time instead.
matplotlib is an optional extra (`pip install vla_edge[viz]`); it is imported here, lazily, with
the Agg canvas (pyplot's global backend is left alone), so nothing else in the package needs it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_edge.replay.compare import ActionRun, CompareResult


def _chunk_heads(run: ActionRun, t0_ns: int) -> tuple[np.ndarray, np.ndarray]:
    heads = [c[0] for c in run.chunks if c.size]
    stamps = [s for s, c in zip(run.chunk_stamps_ns, run.chunks) if c.size]
    if not heads:
        return np.zeros(0), np.zeros((0, 0))
    return (np.array(stamps) - t0_ns) / 1e9, np.array(heads)


def plot_overlay(result: CompareResult, path: str | Path, dpi: int = 100) -> Path:
    """Write the overlay PNG; returns its path. Raises ImportError naming the extra if needed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError('plotting needs matplotlib: pip install "vla_edge[viz]"') from exc

    g, n = result.golden, result.new
    use_commands = len(g.commands) and len(n.commands)
    if use_commands:
        series = [(g.command_t_s, g.commands), (n.command_t_s, n.commands)]
        what = 'executed command'
    else:
        t0 = int(min([*g.chunk_stamps_ns[:1], *n.chunk_stamps_ns[:1]], default=0))
        series = [_chunk_heads(g, t0), _chunk_heads(n, t0)]
        what = 'first action of each chunk'
    dims = max(s[1].shape[1] if s[1].ndim == 2 else 0 for s in series)
    names = g.joint_names or n.joint_names
    fig = Figure(figsize=(9, 2.4 * max(dims, 1)))
    FigureCanvasAgg(fig)    # the Agg canvas, without touching pyplot's global backend
    axes = fig.subplots(max(dims, 1), 1, sharex=True, squeeze=False)
    for j in range(dims):
        ax = axes[j, 0]
        for (t, values), label, style in zip(series, ('golden', 'new'), ('-', '--')):
            if values.ndim == 2 and values.shape[1] > j:
                ax.plot(t, values[:, j], style, label=label, linewidth=1.2)
        ax.set_ylabel(names[j] if j < len(names) else f'j{j}')
        if use_commands and result.drift_abs_error.size and result.drift_abs_error.shape[1] > j:
            err_ax = ax.twinx()
            err_ax.plot(result.drift_t_s, result.drift_abs_error[:, j], color='tab:red',
                        linewidth=0.8, alpha=0.6, label='|error|')
            err_ax.set_ylabel('|error|', color='tab:red')
        ax.legend(loc='upper left', fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel('time since first command [s]' if use_commands
                           else 'observation time [s]')
    verdict = 'PASSED' if result.passed else 'FAILED'
    fig.suptitle(f'golden vs new: {what} ({verdict})')
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
