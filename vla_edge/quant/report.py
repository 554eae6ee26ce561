"""The quantization report: a text table per stage, the Pareto plot (PNG) and the JSON."""
from __future__ import annotations

import json
from pathlib import Path

from vla_edge.core.json_safe import finite_for_json
from vla_edge.quant.allocation import Allocation


def stage_table(candidates: dict[str, list[dict]]) -> str:
    # As wide as the longest name (exclusion candidates have long ones), so columns line up.
    w = max([30] + [len(r['name']) for rows in candidates.values() for r in rows])
    lines = [f'{"stage":<15} {"candidate":<{w}} {"lat/call ms":>11} {"x FP32":>7} '
             f'{"drift mean":>10} {"drift final":>11} {"act err":>8} {"success":>8}  note']
    for stage, rows in candidates.items():
        for r in rows:
            if 'error' in r:
                lines.append(f'{stage:<15} {r["name"]:<{w}} {"build failed: " + r["error"][:60]}')
                continue
            lines.append(
                f'{stage:<15} {r["name"]:<{w}} {r["latency_ms"]:11.3f} {r["latency_ratio"]:7.2f} '
                f'{r["drift_mean"]:10.4f} {r["drift_final"]:11.4f} '
                f'{r["action_error_open_loop"]:8.4f} {r["success_rate"] * 100:7.0f}%  '
                f'{r.get("note", "")}')
    return '\n'.join(lines)


def pareto_png(path: Path, alloc: Allocation, measured: dict[str, dict]) -> Path | None:
    """Latency vs estimated drift of every mix, the front, and the measured mixes. Needs
    matplotlib (an optional extra): without it, no PNG and the JSON says so."""
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([m.latency_s * 1e3 for m in alloc.mixes], [m.drift for m in alloc.mixes], s=12,
               color='0.7', label='mixes (estimated drift)')
    ax.plot([m.latency_s * 1e3 for m in alloc.pareto], [m.drift for m in alloc.pareto], '-o',
            ms=4, color='tab:blue', label='Pareto front')
    ax.scatter([alloc.chosen.latency_s * 1e3], [alloc.chosen.drift], s=90, marker='*',
               color='tab:red', label='chosen (estimate)', zorder=5)
    for label, m in measured.items():
        if m.get('policy_step_ms') is not None and m.get('drift_mean') is not None:
            ax.scatter([m['policy_step_ms']], [m['drift_mean']], s=40, marker='x', zorder=6)
            ax.annotate(label, (m['policy_step_ms'], m['drift_mean']), fontsize=7)
    ax.set_xlabel('policy step latency (ms, sum of per-stage medians)')
    ax.set_ylabel('trajectory drift vs FP32 (table units)')
    ax.set_title('precision mixes: latency vs closed-loop drift')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(finite_for_json(data), indent=2, default=str))
    return path
