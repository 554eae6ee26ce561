"""`vla-edge replay-test`: replay a bag through the pipeline, record its outputs, compare them
with a golden bag. The same verb records the sim run and writes the golden it is compared with:

    vla-edge replay-test --record-sim-run sim_run --seconds 8   # 1. a live sim episode's bag
    vla-edge replay-test sim_run --write-golden golden          # 2. the golden outputs
    vla-edge replay-test golden --golden golden --out out/      # 3. gate: exit 0 pass, 1 differ
    vla-edge replay-test golden --golden golden --out out/ --model models/candidate

(1 and 2 also run in one call: `--record-sim-run sim_run --write-golden golden`.) Step 3 plays
the bag's inputs into vla_node + chunk_executor brought up from the same parameter files as
`vla-edge bringup`, records action_chunk and command_raw into OUT/run, compares them with the
golden's (`replay.compare`, thresholds as flags) and writes OUT/report.txt, OUT/result.json
and OUT/overlay.png; the report also says which model files differ from the golden's.
Exit 0: passed (or only bags were made), 1: the outputs differ, 2: it could not run.

How a replay is made reproducible (deterministic mode, the default), its limits, and why the
golden comes from a replay rather than from the live run: `tools/pipeline_replay.py`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from vla_edge.core.errors import VlaEdgeError
from vla_edge.replay.compare import add_threshold_arguments, compare_runs, thresholds_from_args
from vla_edge.tools.pipeline_replay import (
    ReplayTestConfig,
    bag_inputs,
    golden_identity,
    model_identity,
    record_sim_run,
    replay_through_pipeline,
    write_golden,
)

DESCRIPTION = ('Replay a bag through the pipeline, record its outputs and compare them with a '
               'golden bag (exit 0 pass, 1 differ, 2 error); also records sim runs and writes '
               'goldens.')


# -- the `vla-edge replay-test` verb -------------------------------------------------------------

def add_replay_test_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of `vla-edge replay-test`; `run_replay_test(args)` executes them."""
    from vla_edge.arg_types import domain_id, output_folder, positive_float

    p.add_argument('bag', type=Path, nargs='?', default=None,
                   help='bag whose inputs to replay (a golden bag holds its own inputs)')
    p.add_argument('--golden', type=Path, default=None,
                   help='golden bag to compare the outputs with (needs --out)')
    p.add_argument('--out', type=output_folder, default=None,
                   help='output folder: run (bag of the outputs), report.txt, result.json, '
                        'overlay.png')
    p.add_argument('--model', type=Path, default=None, metavar='DIR',
                   help='model folder to replay with (default: the configured model_dir, '
                        'else the reference model): how a model change is gated')
    p.add_argument('--no-deterministic', dest='deterministic', action='store_false',
                   help='replay in real time (--rate; /clock from the player) into the '
                        'pipeline as configured, fresh noise: timing races included, chunks '
                        'differ run to run (default: deterministic lockstep, plan_on_frame, '
                        'fixed noise seed: bit-identical replays)')
    p.add_argument('--noise-seed', type=int, default=None, metavar='N',
                   help='denoiser noise seed (default: 0 when deterministic, else the '
                        'configured one)')
    p.add_argument('-r', '--rate', type=float, default=1.0,
                   help='playback rate with --no-deterministic (default: 1.0)')
    p.add_argument('--with-watchdog', action='store_true',
                   help='bring the watchdog up too and record /command (default: off)')
    p.add_argument('--params-file', type=Path, nargs='+', default=None, metavar='FILE',
                   help='parameter files of the pipeline (default: config/pipeline.yaml, '
                        'sim.yaml, watchdog.yaml)')
    p.add_argument('--response-timeout', type=positive_float, default=5.0, metavar='S',
                   help='lockstep: seconds to wait for the chunk of a frame (default: 5)')
    p.add_argument('-s', '--storage', choices=('mcap', 'sqlite3'), default='mcap',
                   help='storage of the bags written (default: mcap)')
    p.add_argument('--domain-id', type=domain_id, default=None, metavar='N',
                   help='ROS domain of the replay (default: a private one in 150-199; '
                        'discovery is localhost-only unless ROS_AUTOMATIC_DISCOVERY_RANGE says '
                        'otherwise)')
    g = p.add_argument_group('making the bags')
    g.add_argument('--record-sim-run', type=Path, default=None, metavar='BAG',
                   help='first record a live sim episode through the pipeline to BAG (inputs '
                        'and outputs); it is then the bag replayed')
    g.add_argument('--seconds', type=positive_float, default=8.0, metavar='S',
                   help='length of the sim run (default: 8)')
    g.add_argument('--sim-seed', type=int, default=None, metavar='N',
                   help='episode seed of the sim run (default: sim_robot.first_seed)')
    g.add_argument('--write-golden', type=Path, default=None, metavar='GOLDEN',
                   help="write GOLDEN: the bag's inputs plus the outputs of a replay of them")
    t = p.add_argument_group('thresholds (pass/fail)')
    add_threshold_arguments(t)


def check_thresholds(args: argparse.Namespace) -> None:
    """Limits that cannot be met (or always are) would only show after the whole replay."""
    if not 0.0 <= args.min_matched_fraction <= 1.0:
        raise ValueError(f'--min-matched-fraction must be in [0, 1], got '
                         f'{args.min_matched_fraction:g}')
    for flag in ('chunk_max_abs_error', 'chunk_mean_abs_error', 'command_max_abs_error',
                 'command_mean_abs_error', 'stamp_tolerance_s'):
        if not getattr(args, flag) >= 0:     # also refuses nan
            raise ValueError(f'--{flag.replace("_", "-")} must be >= 0, got '
                             f'{getattr(args, flag):g}')
    if not args.max_interval_p95_ratio > 0:
        raise ValueError(f'--max-interval-p95-ratio must be > 0, got '
                         f'{args.max_interval_p95_ratio:g}')


def check_model(model_dir: Path | None) -> None:
    """A model folder that cannot load fails here, not after the bags and folders are made."""
    if model_dir is not None:
        from vla_edge.core.manifest import load_manifest

        load_manifest(model_dir, verify_hashes=False)


def config_from_args(args: argparse.Namespace) -> ReplayTestConfig:
    if args.rate <= 0:
        raise ValueError(f'--rate {args.rate} must be > 0')
    check_thresholds(args)
    return ReplayTestConfig(model_dir=args.model, deterministic=args.deterministic,
                            noise_seed=args.noise_seed, rate=args.rate,
                            with_watchdog=args.with_watchdog, param_files=args.params_file,
                            storage=args.storage, response_timeout_s=args.response_timeout,
                            domain_id=args.domain_id)


def model_notes(golden: Path, cfg: ReplayTestConfig) -> tuple[list[str], dict]:
    """Report lines (and JSON) on the model of this run vs the one that made the golden."""
    mine, theirs = model_identity(cfg.model_dir), golden_identity(golden)
    lines = [f'  model: {mine["model"]}; golden made with: '
             f'{theirs.get("model", "(not noted: not written by --write-golden)")}']
    changed = [k[len('sha256.'):] for k in mine
               if k.startswith('sha256.') and theirs and theirs.get(k) != mine[k]]
    if theirs:
        lines.append(f'  model files that differ from the golden\'s (sha256): '
                     f'{", ".join(changed)}' if changed else
                     '  model files: the same as the golden\'s (sha256)')
    mode = 'lockstep' if cfg.deterministic else 'realtime'
    if theirs.get('mode') and theirs['mode'] != mode:
        lines.append(f'  note: the golden was written in {theirs["mode"]} mode, this run is '
                     f'{mode}: expect differences')
    return lines, {'run': mine, 'golden': theirs, 'changed_stages': changed}


def compare_and_report(golden: Path, run: Path, out: Path, cfg: ReplayTestConfig, thresholds,
                       extra: dict) -> int:
    """Compare, write report.txt / result.json / overlay.png into `out`, print; 0 or 1."""
    result = compare_runs(golden, run, thresholds)
    notes, model = model_notes(golden, cfg)
    report = '\n'.join([result.report(), *notes])
    (out / 'report.txt').write_text(report + '\n')
    (out / 'result.json').write_text(json.dumps(
        {**result.to_dict(), 'model': model, **extra}, indent=2))
    try:
        from vla_edge.replay.overlay_plot import plot_overlay

        plot_overlay(result, out / 'overlay.png')
        artefacts = 'report.txt, result.json, overlay.png'
    except ImportError as exc:
        artefacts = f'report.txt, result.json (no overlay.png: {exc})'
    print(report)
    print(f'wrote {artefacts} in {out}')
    return 0 if result.passed else 1


def run_replay_test(args: argparse.Namespace) -> int:
    """Record / write a golden / replay and compare, as the flags ask. 0: passed (or only bags
    made), 1: the outputs differ from the golden, 2: could not run."""
    from vla_edge.replay.stop_signals import stop_requested

    try:
        cfg = config_from_args(args)
        thresholds = thresholds_from_args(args)
        if args.record_sim_run is not None and args.bag is not None:
            raise ValueError('give either BAG or --record-sim-run BAG, not both')
        if args.bag is None and args.record_sim_run is None:
            raise ValueError('name the BAG to replay (or --record-sim-run BAG)')
        if args.golden is not None and args.out is None:
            raise ValueError('--golden needs --out OUT (where the run and the report go)')
        if args.golden is None and args.write_golden is None and args.record_sim_run is None:
            raise ValueError('nothing to do: give --golden GOLDEN --out OUT, or --write-golden')
        check_model(args.model)
        if args.bag is not None:
            bag_inputs(args.bag)       # a bag the pipeline cannot act on: say so before anything
        if args.golden is not None and not args.golden.exists() \
                and args.golden != args.write_golden:
            raise VlaEdgeError(f'no golden bag at {args.golden}')
        run_bag = None
        if args.out is not None:
            run_bag = args.out / 'run'
            if run_bag.exists():
                raise VlaEdgeError(f'{run_bag} exists already; choose a new --out')
        with stop_requested() as stop:
            bag = args.bag
            if args.record_sim_run is not None:
                record_sim_run(args.record_sim_run, args.seconds, cfg, sim_seed=args.sim_seed,
                               stop=stop)
                bag = args.record_sim_run
            if args.write_golden is not None:
                write_golden(bag, args.write_golden, cfg, stop=stop)
            if args.golden is None:
                return 0
            created_out = not args.out.exists()
            args.out.mkdir(parents=True, exist_ok=True)
            try:
                stats = replay_through_pipeline(bag, run_bag, cfg, stop=stop)
            except BaseException:
                if created_out and not any(args.out.iterdir()):
                    args.out.rmdir()        # made by this run and left empty: not left behind
                raise
        config = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
        config['param_files'] = [str(f) for f in cfg.param_files or []]
        return compare_and_report(args.golden, run_bag, args.out, cfg, thresholds,
                                  {'replay': stats, 'config': config})
    except KeyboardInterrupt:
        print('vla-edge replay-test: interrupted', file=sys.stderr)
        return 130
    except (VlaEdgeError, ValueError, OSError) as exc:
        print(f'vla-edge replay-test: error: {exc}', file=sys.stderr)
        return 2


def replay_test_main(argv: list[str] | None = None) -> int:
    """Standalone (python -m vla_edge.tools.replay_test ...)."""
    from vla_edge.arg_types import HelpFormatter

    parser = argparse.ArgumentParser(prog='vla-edge replay-test', description=DESCRIPTION,
                                     formatter_class=HelpFormatter)
    add_replay_test_arguments(parser)
    return run_replay_test(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(replay_test_main())
