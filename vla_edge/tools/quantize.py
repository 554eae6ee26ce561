"""`vla-edge quantize MODEL_DIR --out OUT_DIR`: drift-aware, measured mixed-precision quantization.

The verb's arguments and its runner; the work is in vla_edge.quant.pipeline.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from vla_edge.arg_types import (
    fraction,
    non_negative_float,
    non_negative_int,
    output_folder,
    positive_float,
    positive_int,
)
from vla_edge.core.joint_state import DEFAULT_POSITION_JOINTS, DEFAULT_VELOCITY_JOINTS
from vla_edge.core.onnx_session import SessionOptions
from vla_edge.quant.bag_calibration import DEFAULT_INSTRUCTION, DEFAULT_MAX_FRAMES, BagTopicNames
from vla_edge.quant.calibration import CALIBRATION_SEED_OFFSET, QUANTIZED_STAGES
from vla_edge.quant.candidates import (
    CALIBRATION_METHODS,
    Recipe,
    default_recipes,
    exclusion_variants,
)


def _stage(text: str, spec: str, form: str) -> str:
    if text not in QUANTIZED_STAGES:
        raise argparse.ArgumentTypeError(f'{spec!r}: unknown stage {text!r} in {form}; stages: '
                                         f'{", ".join(QUANTIZED_STAGES)}')
    return text


def stage_regex(spec: str) -> tuple[str, str]:
    """'backbone=kv\\.2' -> ('backbone', 'kv\\.2'): a node-name regex to keep in float."""
    stage, sep, pattern = spec.partition('=')
    if not sep or not pattern:
        raise argparse.ArgumentTypeError(f'{spec!r} is not STAGE=REGEX')
    try:
        re.compile(pattern)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f'{spec!r}: {pattern!r} is not a valid regular '
                                         f'expression ({exc})') from exc
    return _stage(stage, spec, 'STAGE=REGEX'), pattern


def stage_fraction(spec: str) -> tuple[str, float]:
    """'action_expert=0.3' -> ('action_expert', 0.3): last MatMul/Gemm fraction kept in float."""
    stage, sep, text = spec.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError(f'{spec!r} is not STAGE=FRACTION')
    try:
        fraction = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{spec!r}: {text!r} is not a number') from None
    if not 0.0 <= fraction < 1.0:
        raise argparse.ArgumentTypeError(f'{spec!r}: the fraction must be in [0, 1), '
                                         f'got {fraction:g}')
    return _stage(stage, spec, 'STAGE=FRACTION'), fraction


def stage_recipes(excludes: list[tuple[str, str]], keep_tails: list[tuple[str, float]],
                  base: list[Recipe]) -> dict[str, tuple[Recipe, ...]]:
    """Per stage named by --exclude/--keep-tail: each quantized `base` recipe again with that
    stage's regexes (all of them) and each of its keep-tail fractions."""
    stages = dict.fromkeys(s for s, _ in [*excludes, *keep_tails])
    return {s: tuple(exclusion_variants(base, [p for st, p in excludes if st == s],
                                        [f for st, f in keep_tails if st == s]))
            for s in stages}


def add_quantize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('model_dir', type=Path, metavar='MODEL_DIR', help='FP32 model folder')
    p.add_argument('--out', type=output_folder, required=True,
                   help='output model folder (created; must differ from MODEL_DIR)')
    p.add_argument('--calib', default='sim', metavar='sim|BAG',
                   help="calibration data: 'sim' (seeded sim episodes) or a rosbag2 (folder, "
                        '.mcap or .db3) with camera frames, /joint_states and /instruction, as '
                        '`vla-edge replay-test --record-sim-run` records; drift is measured in '
                        'the sim either way (--episodes seeds from --seed-offset)')
    budget = p.add_mutually_exclusive_group()
    budget.add_argument('--latency-budget-ms', type=positive_float, default=None,
                        help='choose the least-drift mix whose policy step fits this budget')
    budget.add_argument('--drift-budget', type=non_negative_float, default=None,
                        help='choose the fastest mix whose estimated mean drift (table units) '
                             'stays within this (default when no budget is given: 0.01)')
    p.add_argument('--episodes', type=positive_int, default=10,
                   help='sim episodes K of the drift measurement (with --calib sim also the '
                        'calibration episodes)')
    p.add_argument('--seed-offset', type=non_negative_int, default=CALIBRATION_SEED_OFFSET,
                   help='first calibration/drift seed (disjoint from training 0.. and held-out '
                        '1000000..)')
    p.add_argument('--methods', nargs='+', default=['minmax', 'percentile'],
                   choices=CALIBRATION_METHODS, help='static INT8 calibration methods to try')
    p.add_argument('--exclude', action='append', type=stage_regex, default=[],
                   metavar='STAGE=REGEX',
                   help='keep the nodes of STAGE whose names match REGEX in float: every '
                        'quantized candidate of STAGE is also built with them excluded '
                        '(repeatable; all regexes of a stage apply together). STAGE: '
                        f'{", ".join(QUANTIZED_STAGES)}')
    p.add_argument('--keep-tail', action='append', type=stage_fraction, default=[],
                   metavar='STAGE=FRACTION',
                   help='keep the last FRACTION (in [0, 1)) of the MatMul/Gemm nodes of STAGE in '
                        'float: every quantized candidate of STAGE is also built so, together '
                        'with its --exclude regexes (repeatable: one set of extra candidates '
                        'per fraction)')
    p.add_argument('--repeats', type=positive_int, default=100,
                   help='latency repeats per candidate (median; interleaved with FP32)')
    p.add_argument('--max-success-drop', type=fraction, default=0.1,
                   help='never choose a candidate losing more success (fraction) than this')
    p.add_argument('--heldout-episodes', type=non_negative_int, default=0,
                   help='also compare FP32 and the chosen mix on this many held-out seeds '
                        '(0: no)')
    p.add_argument('--threads', type=non_negative_int, default=1,
                   help='intra-op threads per ONNX session (0 = let ORT choose)')
    p.add_argument('--providers', nargs='+', default=['CPUExecutionProvider'],
                   help='ONNX Runtime execution providers in order of preference')
    p.add_argument('--no-progress', action='store_true', help='hide progress bars')
    g = p.add_argument_group('calibration from a bag (--calib BAG)')
    topics = BagTopicNames()
    g.add_argument('--calib-max-frames', type=positive_int, default=DEFAULT_MAX_FRAMES,
                   metavar='N', help='use at most N camera frames, evenly spread over the bag')
    g.add_argument('--calib-camera-topic', default=topics.camera, metavar='TOPIC',
                   help='sensor_msgs/Image topic (or its /compressed); also found under a '
                        'namespace')
    g.add_argument('--calib-state-topic', default=topics.joint_states, metavar='TOPIC',
                   help='sensor_msgs/JointState topic (which joints: --calib-position-joints, '
                        '--calib-velocity-joints)')
    g.add_argument('--calib-instruction-topic', default=topics.instruction, metavar='TOPIC',
                   help='std_msgs/String topic (frames before any: --calib-instruction)')
    g.add_argument('--calib-instruction', default=DEFAULT_INSTRUCTION, metavar='TEXT',
                   help="instruction for frames recorded before any on the topic (vla_node's "
                        'default)')
    g.add_argument('--calib-position-joints', nargs='+', default=list(DEFAULT_POSITION_JOINTS),
                   metavar='NAME', help="JointState names whose positions start the state "
                                        "vector (vla_node's state_position_joints)")
    g.add_argument('--calib-velocity-joints', nargs='*', default=list(DEFAULT_VELOCITY_JOINTS),
                   metavar='NAME', help="JointState names whose velocities follow "
                                        "(vla_node's state_velocity_joints)")


def config_from_args(args: argparse.Namespace):
    """The QuantizeConfig the parsed arguments describe."""
    from vla_edge.quant.pipeline import QuantizeConfig

    methods = tuple(args.methods)
    return QuantizeConfig(
        model_dir=args.model_dir, out_dir=args.out, calib=args.calib, episodes=args.episodes,
        seed_offset=args.seed_offset, latency_budget_ms=args.latency_budget_ms,
        drift_budget=args.drift_budget, methods=methods, repeats=args.repeats,
        max_success_drop=args.max_success_drop, heldout_episodes=args.heldout_episodes,
        options=SessionOptions(tuple(args.providers), args.threads),
        progress=not args.no_progress, calib_max_frames=args.calib_max_frames,
        calib_topics=BagTopicNames(args.calib_camera_topic, args.calib_state_topic,
                                   args.calib_instruction_topic),
        calib_position_joints=tuple(args.calib_position_joints),
        calib_velocity_joints=tuple(args.calib_velocity_joints),
        calib_instruction=args.calib_instruction,
        stage_recipes=stage_recipes(args.exclude, args.keep_tail, default_recipes(methods)))


def run_quantize(args: argparse.Namespace) -> int:
    from vla_edge.quant.pipeline import quantize

    cfg = config_from_args(args)
    report = quantize(cfg)
    print(report['table'])
    print('\n'.join(report['decisions']))
    print(f'wrote {args.out} (model folder), {args.out / "quantization_report.json"}, '
          f'{report["pareto_png"]}')
    return 0
