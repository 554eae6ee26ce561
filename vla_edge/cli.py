"""The `vla-edge` command: one verb per task; each verb calls into the packages.

Over 400 lines because every verb's arguments are here, in one place to read `--help` from; the
verbs' work is in vla_edge/tools and the packages.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from vla_edge.arg_types import (
    HelpFormatter,
    fraction,
    latency_ms,
    non_negative_float,
    non_negative_int,
    output_file,
    output_folder,
    positive_float,
    positive_int,
)
from vla_edge.core.chunk_merge import STRATEGIES, MergeConfig
from vla_edge.core.chunk_scheduler import SchedulerConfig
from vla_edge.core.errors import VlaEdgeError, one_line
from vla_edge.core.json_safe import finite_for_json
from vla_edge.core.model_dir import default_model_dir
from vla_edge.sim.world import COMMAND_INTERFACES, DEFAULT_COMMAND_INTERFACE


def _session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--model', type=Path, default=None,
                   help='model folder (default: $VLA_EDGE_MODEL_DIR or models/reference)')
    p.add_argument('--providers', nargs='+', default=['CPUExecutionProvider'],
                   help='ONNX Runtime execution providers in order of preference '
                        '(default: CPUExecutionProvider)')
    p.add_argument('--threads', type=non_negative_int, default=1,
                   help='intra-op threads per ONNX session (default: 1; 0 = let ORT choose)')


def _runtime(args: argparse.Namespace):
    from vla_edge.core.onnx_session import SessionOptions
    from vla_edge.core.runtime import PolicyRuntime

    return PolicyRuntime(args.model or default_model_dir(),
                         SessionOptions(tuple(args.providers), args.threads))


def _write_json(path: Path | None, data: dict) -> None:
    """Write `data` to `path` (checked up front by `output_file`); None: nothing."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite_for_json(data), indent=2, default=str))
    print(f'wrote {path}')


def default_merge(command_interface: str) -> str:
    """The merge each interface was measured smoothest with at equal success: blend for
    velocities, offset_fade for position targets (docs/measurements.md)."""
    return 'offset_fade' if command_interface == 'position' else MergeConfig.strategy


def merge_config(command_interface: str, strategy: str | None = None,
                 blend_steps: int = MergeConfig.blend_steps,
                 fade_steps: int = MergeConfig.fade_steps) -> MergeConfig:
    """The merge of a sim run: `strategy` or the interface's default; offset_fade takes up
    position offsets no faster than the sim robot's top speed (as `merge.max_speed` in
    config/position_targets.yaml)."""
    from vla_edge.sim.world import SimConfig

    strategy = strategy or default_merge(command_interface)
    top = SimConfig(command_interface='position').max_step_distance \
        if strategy == 'offset_fade' else 0.0
    return MergeConfig(strategy, blend_steps, fade_steps=fade_steps, max_step=top)


def _eval_config(args: argparse.Namespace, mode: str, **overrides):
    from vla_edge.sim.closed_loop import EvalConfig

    interface = getattr(args, 'command_interface', DEFAULT_COMMAND_INTERFACE)
    kw = dict(mode=mode, episodes=args.episodes, seed_offset=args.seed_offset,
              latency_s=None if args.latency_ms is None else args.latency_ms / 1e3,
              command_interface=interface, merge=merge_config(interface))
    kw.update(overrides)
    return EvalConfig(**kw)


def _check_held_out(runtime, seed_offset: int, episodes: int) -> None:
    lo, hi = runtime.manifest.training_seed_range
    if seed_offset < hi and seed_offset + episodes > lo:
        raise VlaEdgeError(f'seeds {seed_offset}..{seed_offset + episodes - 1} overlap the '
                           f'training seeds {lo}..{hi - 1}: evaluation must use held-out seeds '
                           f'(e.g. --seed-offset 1000000)')


def sim_policy(runtime, command_interface: str):
    """The model as the sim's chunk source: its velocity chunks, or the positions they reach."""
    from vla_edge.sim.closed_loop import RuntimePolicy
    from vla_edge.sim.world import SimConfig

    if command_interface != 'position':
        return RuntimePolicy(runtime)
    config = SimConfig(command_interface=command_interface)
    return RuntimePolicy(runtime, config.max_step_distance, config.workspace)


def cmd_eval(args: argparse.Namespace) -> int:
    from vla_edge.sim.closed_loop import evaluate
    from vla_edge.tools.eval_report import describe

    if args.expert:
        from vla_edge.sim.closed_loop import evaluate_expert
        from vla_edge.sim.world import SimConfig

        result = evaluate_expert(args.episodes, args.seed_offset,
                                 SimConfig(command_interface=args.command_interface))
        print(f'scripted expert: success {result["success_rate"] * 100:.1f}% over '
              f'{args.episodes} seeds from {args.seed_offset}, time-to-completion '
              f'{result["mean_time_to_completion_s"]:.2f} s')
        _write_json(args.json, result)
        return 0
    rt = _runtime(args)
    _check_held_out(rt, args.seed_offset, args.episodes)
    cfg = _eval_config(args, args.mode, phrasing=args.phrasing, swap_object=args.swap_object,
                       merge=merge_config(args.command_interface, args.merge, args.blend_steps,
                                          args.fade_steps),
                       max_action_age_s=args.max_action_age)
    report = evaluate(sim_policy(rt, args.command_interface), cfg)
    print(describe(report))
    _write_json(args.json, report.to_dict())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vla_edge.sim.closed_loop import ExpertPolicy, evaluate
    from vla_edge.sim.env import TeaTableEnv
    from vla_edge.sim.world import SimConfig
    from vla_edge.tools.eval_report import (
        compare_reports,
        describe,
        describe_comparison,
        summary_dict,
    )

    rt = _runtime(args)
    _check_held_out(rt, args.seed_offset, max(args.episodes, args.eval_episodes))
    report: dict = {}
    if not args.skip_ros:
        report.update(_ros_demo(args, rt))
    policy = sim_policy(rt, args.command_interface)
    runs = {
        'sync': _eval_config(args, 'sync', episodes=args.eval_episodes),
        'async': _eval_config(args, 'async', episodes=args.eval_episodes),
        'heldout_phrasing': _eval_config(args, 'sync', phrasing='heldout',
                                         episodes=args.eval_episodes),
        'swapped_object': _eval_config(args, 'sync', swap_object=True,
                                       episodes=args.eval_episodes),
    }
    # The emulated board again, on 10x the real-time demo's episodes: there one failure moves
    # success by 10 points, so this is the figure to compare async and sync by.
    edge_s = args.latency_fraction * rt.manifest.chunk_duration_s
    for mode in ('async', 'sync'):
        runs[f'EMULATED_edge_{mode}'] = _eval_config(args, mode, episodes=args.eval_episodes,
                                                      latency_s=edge_s)
    print(f'\nvirtual-clock evaluation (no ROS): model {rt.manifest.name!r}, '
          f'{args.eval_episodes} held-out episodes per run (seeds from {args.seed_offset}), '
          f'latency {"measured" if args.latency_ms is None else f"{args.latency_ms} ms"}, '
          f'{args.command_interface} commands, merge {default_merge(args.command_interface)}')
    reports = {name: evaluate(policy, cfg) for name, cfg in runs.items()}
    for name, r in reports.items():
        print(describe(r, name))
    edge = compare_reports(reports['EMULATED_edge_async'], reports['EMULATED_edge_sync'])
    print(f'EMULATED edge on the virtual clock: {describe_comparison(edge)}')
    report['virtual_clock'] = {name: summary_dict(r) for name, r in reports.items()
                               if not name.startswith('EMULATED')}
    report['virtual_clock']['emulated_edge'] = {
        'latency_fraction': args.latency_fraction, 'latency_s': edge_s, 'emulated': True,
        **{mode: summary_dict(reports[f'EMULATED_edge_{mode}']) for mode in ('async', 'sync')},
        'async_vs_sync': edge}
    # What a perfectly continuous policy scores on the switch ratio: the scripted expert plans
    # the chunks (they continue one another exactly), same scheduler and seeds as 'async'.
    env = TeaTableEnv(SimConfig(command_interface=args.command_interface))
    ceiling = {name: evaluate(ExpertPolicy(env), runs[name], env, progress=False)
               .switch_discontinuity_ratio for name in ('async', 'EMULATED_edge_async')}
    print(f'switch max/median of the scripted expert planning the chunks (they continue one '
          f'another exactly: what a perfect imitator scores): {ceiling["async"]:.2f}, EMULATED '
          f'edge {ceiling["EMULATED_edge_async"]:.2f}')
    report['virtual_clock']['expert_switch_discontinuity_ratio'] = ceiling['async']
    report['virtual_clock']['emulated_edge']['expert_switch_discontinuity_ratio'] = \
        ceiling['EMULATED_edge_async']
    report['command_interface'] = args.command_interface
    _write_json(args.json, report)
    return 0


def _ros_demo(args: argparse.Namespace, rt) -> dict:

    from vla_edge.tools.eval_report import describe_comparison
    from vla_edge.tools.ros_demo import run_demo
    from vla_edge.tools.timeline_plot import plot_timelines

    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if args.model:
        os.environ['VLA_EDGE_MODEL_DIR'] = str(args.model)
    chunk_s = rt.manifest.chunk_duration_s
    print(f'ROS 2 closed loop over DDS, real time: {args.episodes} held-out episodes per '
          f'configuration (seeds from {args.seed_offset}); emulated edge board = '
          f'{args.latency_fraction:g} x chunk duration ({args.latency_fraction * chunk_s:.2f} s)')
    print('commands: ' + ('position targets (config/position_targets.yaml)'
                          if args.command_interface == 'position' else 'velocities'))
    report, traces = run_demo(args.episodes, args.seed_offset, args.latency_fraction, chunk_s,
                              command_interface=args.command_interface)
    print()
    for label, r in (('async', report['async']), ('sync', report['sync']),
                     ('async [EMULATED edge]', report['emulated_edge']['async']),
                     ('sync  [EMULATED edge]', report['emulated_edge']['sync'])):
        print(_ros_line(label, r))
    print(report['jitter_note'])
    print(f'this machine: {describe_comparison(report["async_vs_sync"])}')
    print(f'EMULATED edge: {describe_comparison(report["emulated_edge"]["async_vs_sync"])}')
    if args.png:
        path = plot_timelines(traces, args.png, {
            'async': 'async', 'sync': 'sync',
            'emulated_async': 'async, EMULATED slow board',
            'emulated_sync': 'sync, EMULATED slow board'})
        print(f'wrote {path}')
    return report


def _ros_line(label: str, r: dict) -> str:
    from vla_edge.tools.eval_report import describe_switches

    ttc = r['mean_time_to_completion_s']
    clean = r.get('switch_discontinuity_ratio_without_retries', float('nan'))
    lat = ', '.join(f'{k} {v["p50"]:.1f}/{v["p95"]:.1f}' for k, v in r['latency_ms'].items())
    vision = r.get('vision') or {}
    seen = vision.get('frames_encoded', 0) + vision.get('frames_skipped_unchanged', 0)
    if seen:
        lat += (f'; frames encoded {vision["frames_encoded"]}, skipped as unchanged '
                f'{vision["frames_skipped_unchanged"]} '
                f'({vision["frames_skipped_unchanged"] / seen * 100:.0f}%)')
    return (f'{label:<24} success {r["success_rate"] * 100:5.1f}%  time-to-completion '
            f'{"  n/a" if ttc is None else f"{ttc:5.2f}"} s  stalled ticks '
            f'{r["stalled_ticks"]:4d}  jitter p99 {r["jitter_p99_ms"]:6.2f} ms  '
            f'{describe_switches(r["switch_discontinuity_ratio"], r["switch_p95_ratio"], clean)}'
            '  episodes with retries '
            f'{r.get("episodes_with_retries", 0)}\n{"":<24} stage '
            f'latency p50/p95 ms: {lat}')


def cmd_train(args: argparse.Namespace) -> int:
    from vla_edge.reference.export import export_policy
    from vla_edge.reference.train import TrainConfig, train

    cfg = TrainConfig(episodes=args.episodes, steps=args.steps, batch_size=args.batch_size,
                      seed=args.seed, lr=args.lr, aux_weight=args.aux_weight,
                      pregrasp_aux_boost=args.pregrasp_aux_boost, warmup_steps=args.warmup_steps,
                      committed_prefix_fraction=args.committed_prefix_fraction,
                      max_committed_actions=args.max_committed_actions,
                      init_from=str(args.init_from) if args.init_from else None)
    checkpoint = train(cfg, args.out)
    print(f'checkpoint: {checkpoint}')
    if args.export_to:
        print(f'exported: {export_policy(checkpoint, args.export_to)}')
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vla_edge.reference.export import export_policy

    path = export_policy(args.checkpoint, args.out, args.denoising_steps, args.control_rate_hz)
    print(f'wrote {path}')
    return 0


def cmd_export_instruction_encoder(args: argparse.Namespace) -> int:
    from vla_edge.reference.export import regenerate_instruction_encoder

    print(f'wrote {regenerate_instruction_encoder(args.model_dir)} (sha256 matches the manifest)')
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from vla_edge.core.onnx_session import SessionOptions
    from vla_edge.tools.stage_bench import bench_stages, describe

    result = bench_stages(str(args.model or default_model_dir()), args.repeats,
                          options=SessionOptions(tuple(args.providers), args.threads))
    print(describe(result))
    _write_json(args.json, result)
    return 0


def cmd_bringup(args: argparse.Namespace) -> int:
    from vla_edge.nodes.bringup import checked_namespace, default_param_files, robot_remaps
    from vla_edge.tools.bringup_cli import parse_overrides, run_in_process, run_processes

    namespace = checked_namespace(args.namespace)
    remap = robot_remaps(args.command_topic, args.joint_states_topic,
                         with_watchdog=not args.no_watchdog)
    files = args.config or default_param_files(with_sim=not args.no_sim)
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise VlaEdgeError(f'parameter file(s) not found: {", ".join(map(str, missing))}')
    overrides = parse_overrides(args.param)
    run = run_processes if args.processes else run_in_process
    return run(files, not args.no_sim, args.duration, overrides,
               with_watchdog=not args.no_watchdog, namespace=namespace, remap=remap)


def _optional_verb(sub, name: str, help_text: str, module: str, add_arguments: str,
                   run: str, extra: str | None, formatter) -> None:
    """Register a verb from `module`; if its imports fail (an extra not installed), register a
    verb that says which extra to install instead of breaking the whole CLI."""
    import importlib

    kwargs = {'help': help_text} | ({'formatter_class': formatter} if formatter else {})
    p = sub.add_parser(name, **kwargs)
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'vla_edge[{extra}]'" if extra else 'a complete install'

        def unavailable(args: argparse.Namespace, exc=exc) -> int:
            raise VlaEdgeError(f'vla-edge {name} needs {hint} ({exc})')
        p.add_argument('rest', nargs=argparse.REMAINDER)
        p.set_defaults(func=unavailable)
        return
    getattr(mod, add_arguments)(p)
    p.set_defaults(func=getattr(mod, run))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='vla-edge', description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument('-v', '--verbose', action='store_true', help='log at INFO level')
    sub = parser.add_subparsers(dest='verb', required=True, metavar='VERB')
    fmt = HelpFormatter

    def eval_args(p: argparse.ArgumentParser, episodes: int) -> None:
        _session_args(p)
        p.add_argument('--episodes', type=positive_int, default=episodes,
                       help='episodes per run')
        p.add_argument('--seed-offset', type=non_negative_int, default=1_000_000,
                       help='first episode seed (held out: training uses seeds from 0)')
        p.add_argument('--latency-ms', type=latency_ms, default=None, metavar='MS',
                       help='give every inference this latency (0 <= MS < 60000) instead of its '
                            'measured time')
        p.add_argument('--json', type=output_file, default=None,
                       help='write the report as JSON here')

    p = sub.add_parser('demo', formatter_class=fmt,
                       help='the sim closed loop over DDS in real time (async vs sync, and an '
                            'emulated slower board), then the virtual-clock evaluation')
    eval_args(p, 10)
    p.add_argument('--eval-episodes', type=positive_int, default=100,
                   help='episodes per virtual-clock evaluation run')
    p.add_argument('--latency-fraction', type=non_negative_float, default=0.3,
                   help='emulated edge board: inference latency as a fraction of the chunk')
    p.add_argument('--png', type=output_file, default='out/demo_timeline.png',
                   help='timeline plot of the first episode of each real-time run')
    p.add_argument('--skip-ros', action='store_true', help='only the virtual-clock evaluation')
    p.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                   default=DEFAULT_COMMAND_INTERFACE,
                   help='what the sim robot takes: velocities, or position targets (the ROS '
                        'pipeline with config/position_targets.yaml; merge offset_fade)')
    p.set_defaults(func=cmd_demo, json='out/demo.json')   # a str: output_file checks it

    p = sub.add_parser('eval', formatter_class=fmt, help='closed-loop sim evaluation (no ROS)')
    eval_args(p, 100)
    p.add_argument('--mode', choices=['sync', 'async'], default='sync',
                   help='sync: the robot waits for each chunk; async: the next chunk is '
                        'planned while the current one runs')
    p.add_argument('--phrasing', choices=['canonical', 'train', 'heldout'], default='canonical',
                   help='instruction wording: canonical, training phrasings, or held-out ones')
    p.add_argument('--swap-object', action='store_true',
                   help='same scenes, but ask for a different object than the seed chose')
    p.add_argument('--merge', choices=STRATEGIES, default=None,
                   help='how a new chunk joins the queued one (async); default: blend for '
                        'velocity commands, offset_fade for position targets')
    p.add_argument('--fade-steps', type=positive_int, default=MergeConfig.fade_steps,
                   help='offset_fade: ticks over which the position offset at a switch fades')
    p.add_argument('--command-interface', choices=COMMAND_INTERFACES,
                   default=DEFAULT_COMMAND_INTERFACE,
                   help='what the sim robot takes: velocities (the model\'s actions) or position '
                        'targets (the chunk integrated from the observed position)')
    p.add_argument('--expert', action='store_true',
                   help='evaluate the scripted expert (every tick) instead of a model')
    p.add_argument('--blend-steps', type=positive_int, default=MergeConfig.blend_steps,
                   help='overlap of blend / temporal_ensemble, in control ticks')
    p.add_argument('--max-action-age', type=non_negative_float,
                   default=SchedulerConfig.max_action_age_s,
                   metavar='S', help='async: replan so the next chunk lands by the time the '
                                     'current one\'s observation is S seconds old (0: off)')
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser('train', formatter_class=fmt,
                       help='behaviour-clone the reference policy on sim demonstrations (CPU)')
    p.add_argument('--episodes', type=positive_int, default=1000,
                   help='expert episodes (seeds 0..N-1)')
    p.add_argument('--steps', type=positive_int, default=4500, help='optimizer steps')
    p.add_argument('--batch-size', type=positive_int, default=64,
                   help='observations per optimizer step')
    p.add_argument('--seed', type=non_negative_int, default=0,
                   help='seed of the weights, batches and flow noise')
    p.add_argument('--lr', type=positive_float, default=8e-4,
                   help='peak learning rate (cosine decay)')
    p.add_argument('--aux-weight', type=non_negative_float, default=0.5,
                   help='weight of the auxiliary "where is the named object/container" loss')
    p.add_argument('--pregrasp-aux-boost', type=positive_float, default=1.0,
                   help='up-weight samples before the grasp in the auxiliary loss')
    p.add_argument('--warmup-steps', type=non_negative_int, default=200,
                   help='linear learning-rate warm-up before the cosine decay')
    p.add_argument('--committed-prefix-fraction', type=fraction, default=0.0,
                   help='share of flow samples whose first actions are given as committed '
                        '(training-time real-time chunking, e.g. 0.8; 0: off, and the export '
                        'keeps a chunk-wide tau)')
    p.add_argument('--max-committed-actions', type=positive_int, default=25,
                   help='longest committed prefix trained on (below the chunk length)')
    p.add_argument('--init-from', type=Path, default=None,
                   help='start from this checkpoint (fine-tuning); its meta is kept in the log')
    p.add_argument('--out', type=output_folder, default='out/train',
                   help='checkpoint folder')
    p.add_argument('--export-to', type=output_folder, default=None,
                   help='also export a model folder here')
    p.set_defaults(func=cmd_train)

    p = sub.add_parser('export', formatter_class=fmt,
                       help='export a checkpoint to a model folder (ONNX per stage + manifest)')
    p.add_argument('checkpoint', type=Path,
                   help='policy.pt written by `vla-edge train` (e.g. models/checkpoints/'
                        'reference.pt)')
    p.add_argument('--out', type=output_folder, required=True,
                   help='model folder to write (created; files in it are replaced)')
    p.add_argument('--denoising-steps', type=positive_int, default=10,
                   help='flow-matching integration steps per chunk, written to the manifest')
    p.add_argument('--control-rate-hz', type=positive_float, default=50.0,
                   help='rate the chunk\'s actions are executed at, written to the manifest')
    p.set_defaults(func=cmd_export)

    p = sub.add_parser('export-instruction-encoder', formatter_class=fmt,
                       help="regenerate a model folder's instruction encoder ONNX and check its "
                            'sha256 (run by make setup)')
    p.add_argument('model_dir', type=Path,
                   help='model folder whose manifest records the encoder\'s sha256 (e.g. '
                        'models/reference)')
    p.set_defaults(func=cmd_export_instruction_encoder)

    p = sub.add_parser('bringup', formatter_class=fmt,
                       help='run the pipeline (and the sim) with the launch files\' parameter '
                            'files, composed in one process or as separate processes')
    p.add_argument('config', type=Path, nargs='*',
                   help='parameter files; naming any replaces the defaults (with the sim: '
                        'config/pipeline.yaml config/sim.yaml config/watchdog.yaml '
                        'config/position_targets.yaml; with --no-sim the first three)')
    p.add_argument('--processes', action='store_true', help='one process per node executable')
    p.add_argument('--no-sim', action='store_true', help='robot and camera are real: no sim')
    p.add_argument('--no-watchdog', action='store_true',
                   help='no watchdog in the chain: the robot listens to command_raw (testing only)')
    p.add_argument('--duration', type=positive_float, default=None,
                   help='stop after this many seconds (default: until Ctrl-C)')
    p.add_argument('-p', '--param', action='append', default=[], metavar='NODE.PARAM=VALUE',
                   help='override a parameter, e.g. -p chunk_executor.mode=sync')
    p.add_argument('--namespace', default='', help='namespace of every node, as ros2 launch '
                   'vla_edge.launch.py namespace:= (default: none)')
    p.add_argument('--command-topic', default=None, metavar='TOPIC',
                   help='the robot\'s command topic, where the watchdog publishes (e.g. '
                        '/forward_velocity_controller/commands; default: command)')
    p.add_argument('--joint-states-topic', default=None, metavar='TOPIC',
                   help='the robot\'s sensor_msgs/JointState topic (default: joint_states)')
    p.set_defaults(func=cmd_bringup)

    # Verbs whose modules need an optional extra: registered lazily, so the CLI still works
    # (with a clear message for these verbs) where that extra is not installed.
    _optional_verb(sub, 'record', 'record topics to a rosbag2 (mcap or sqlite3) without rosbag2',
                   'vla_edge.replay.recorder', 'add_record_arguments', 'run_record', 'replay', fmt)
    _optional_verb(sub, 'replay', 'play a rosbag2 with its original timing (the recorded bytes)',
                   'vla_edge.replay.player', 'add_replay_arguments', 'run_replay', 'replay', fmt)
    _optional_verb(sub, 'replay-test', 'replay a bag through the pipeline and compare its outputs '
                   'with a golden bag (also --record-sim-run, --write-golden)',
                   'vla_edge.tools.replay_test', 'add_replay_test_arguments', 'run_replay_test',
                   'replay', fmt)
    _optional_verb(sub, 'faults', 'inject faults into the live sim pipeline; measure time to the '
                   'first safe command and count unsafe commands; a clean run counts false vetoes',
                   'vla_edge.tools.faults', 'add_arguments', 'cmd_faults', None, fmt)
    _optional_verb(sub, 'quantize', 'drift-aware mixed-precision quantization, measured on this '
                   'machine', 'vla_edge.tools.quantize', 'add_quantize_arguments', 'run_quantize',
                   'train', fmt)

    p = sub.add_parser('bench', formatter_class=fmt, help='per-stage ONNX latency on this machine')
    _session_args(p)
    p.add_argument('--repeats', type=positive_int, default=200,
                   help='timed runs per stage (the table gives their percentiles)')
    p.add_argument('--json', type=output_file, default=None,
                   help='write the result as JSON here')
    p.set_defaults(func=cmd_bench)
    return parser


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user's input was refused: ours, ValueError, OSError (a file
    that cannot be read or written: the OS says why), and rclpy's name and ROS-argument
    validation errors. rclpy's are looked up only if a verb imported rclpy, so a verb that does
    not need ROS never loads it."""
    errors: list[type[BaseException]] = [VlaEdgeError, ValueError, OSError]
    rclpy_exceptions = sys.modules.get('rclpy.exceptions')
    if rclpy_exceptions is not None:
        errors.append(rclpy_exceptions.NameValidationException)
    rclpy_c = sys.modules.get('rclpy._rclpy_pybind11')
    if rclpy_c is not None and hasattr(rclpy_c, 'RCLInvalidROSArgsError'):
        errors.append(rclpy_c.RCLInvalidROSArgsError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='[%(levelname)s] %(name)s: %(message)s')
    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _input_errors()):
            raise
        # Ours may list several problems, one per line; rclpy's are made one line.
        text = str(exc) if isinstance(exc, (VlaEdgeError, ValueError)) else one_line(exc)
        print(f'vla-edge {args.verb}: error: {text}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
