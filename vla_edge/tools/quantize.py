"""`vla-edge quantize MODEL_DIR --out OUT_DIR`: drift-aware, measured mixed-precision quantization.

The verb's arguments and its runner; the work is in vla_edge.quant.pipeline.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vla_edge.core.onnx_session import SessionOptions
from vla_edge.quant.calibration import CALIBRATION_SEED_OFFSET
from vla_edge.quant.candidates import CALIBRATION_METHODS


def add_quantize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('model_dir', type=Path, metavar='MODEL_DIR', help='FP32 model folder')
    p.add_argument('--out', type=Path, required=True, help='output model folder (created)')
    p.add_argument('--calib', default='sim',
                   help="calibration data: 'sim' (seeded sim episodes) or a rosbag2 path "
                        '(not yet supported)')
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--latency-budget-ms', type=float, default=None,
                        help='choose the least-drift mix whose policy step fits this budget')
    budget.add_argument('--drift-budget', type=float, default=None,
                        help='choose the fastest mix whose estimated mean drift (table units) '
                             'stays within this (default when no budget is given: 0.01)')
    p.add_argument('--episodes', type=int, default=10,
                   help='calibration episodes K, also the seeds of the drift measurement')
    p.add_argument('--seed-offset', type=int, default=CALIBRATION_SEED_OFFSET,
                   help='first calibration seed (disjoint from training 0.. and held-out '
                        '1000000..)')
    p.add_argument('--methods', nargs='+', default=['minmax', 'percentile'],
                   choices=CALIBRATION_METHODS, help='static INT8 calibration methods to try')
    p.add_argument('--repeats', type=int, default=100,
                   help='latency repeats per candidate (median; interleaved with FP32)')
    p.add_argument('--max-success-drop', type=float, default=0.1,
                   help='never choose a candidate losing more success (fraction) than this')
    p.add_argument('--heldout-episodes', type=int, default=0,
                   help='also compare FP32 and the chosen mix on this many held-out seeds')
    p.add_argument('--threads', type=int, default=1, help='intra-op threads per ONNX session')
    p.add_argument('--providers', nargs='+', default=['CPUExecutionProvider'],
                   help='ONNX Runtime execution providers in order of preference')
    p.add_argument('--no-progress', action='store_true', help='hide progress bars')


def run_quantize(args: argparse.Namespace) -> int:
    from vla_edge.quant.pipeline import QuantizeConfig, quantize

    cfg = QuantizeConfig(
        model_dir=args.model_dir, out_dir=args.out, calib=args.calib, episodes=args.episodes,
        seed_offset=args.seed_offset, latency_budget_ms=args.latency_budget_ms,
        drift_budget=args.drift_budget, methods=tuple(args.methods), repeats=args.repeats,
        max_success_drop=args.max_success_drop, heldout_episodes=args.heldout_episodes,
        options=SessionOptions(tuple(args.providers), args.threads),
        progress=not args.no_progress)
    report = quantize(cfg)
    print(report['table'])
    print('\n'.join(report['decisions']))
    print(f'wrote {args.out} (model folder), {args.out / "quantization_report.json"}, '
          f'{report["pareto_png"]}')
    return 0
