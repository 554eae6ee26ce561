"""Full `vla-edge quantize` on the reference model with default settings.

Prints the per-stage candidate table, the decisions, and the chosen mix's policy-step speedup
vs FP32 measured in the same run (last line). Writes the folder to $QUANT_OUT
(default /tmp/vla_edge_quant).
"""
import os
import sys
import tempfile
from pathlib import Path

from vla_edge.core.model_dir import default_model_dir
from vla_edge.quant.pipeline import QuantizeConfig, quantize


def main() -> int:
    out = Path(os.environ.get('QUANT_OUT', Path(tempfile.gettempdir()) / 'vla_edge_quant'))
    heldout = int(os.environ.get('QUANT_HELDOUT_EPISODES', '100'))
    report = quantize(QuantizeConfig(default_model_dir(), out, heldout_episodes=heldout))
    print(report['table'])
    print('\n'.join(report['decisions']))
    step = report['policy_step_ms']
    print('policy step (same run): ' + ', '.join(f'{k} {v:.2f} ms' for k, v in step.items()))
    for label, m in report['measured'].items():
        print(f'{label}: drift mean {m["drift_mean"]:.4f} final {m["drift_final"]:.4f} '
              f'success {m["success_rate"]:.0%} ({m["episodes"]} calibration episodes)')
    if report['heldout']:
        h = report['heldout']
        print(f'held-out {h["episodes"]} seeds from {h["seed_offset"]}: FP32 success '
              f'{h["fp32_success_rate"]:.0%}, chosen {h["chosen_success_rate"]:.0%}')
    print(f'chosen policy-step speedup vs FP32: x{report["policy_step_speedup"]:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
