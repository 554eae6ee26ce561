"""Compare the action outputs of a new run with a golden bag: did the change alter behaviour?

Two streams, as the pipeline publishes them:

- `action_chunk` (trajectory_msgs/JointTrajectory): header.stamp = the observation time, point k
  at time_from_start = k / control rate. Chunks are matched by observation stamp (within
  `stamp_tolerance_s`), so a replayed run is compared prediction by prediction even when its
  chunks arrive at slightly different wall times.
- `command_raw` (std_msgs/Float64MultiArray; JointTrajectory and TwistStamped also read): what
  the executor commanded. Commands carry no stamp: they are aligned by time since each run's
  first command (or by index), and their error over time shows drift.

Messages are decoded with rosbags' typestore, so this module needs no ROS install.
`compare_runs()` returns a `CompareResult` (`passed`, `report()`, `to_dict()`);
`overlay_plot.plot_overlay()` draws it.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vla_edge.core.errors import VlaEdgeError
from vla_edge.replay.bag_reader import BagReader
from vla_edge.replay.errors import BagReadError
from vla_edge.replay.msg_types import decode_cdr

CHUNK_TOPIC = '/action_chunk'
COMMAND_TOPIC = '/command_raw'


@dataclass
class CompareThresholds:
    """Pass/fail limits. Chunks of the same observation from the same model should agree closely;
    commands also depend on when chunks arrived, hence looser limits."""

    chunk_max_abs_error: float = 1e-3
    chunk_mean_abs_error: float = 1e-4
    command_max_abs_error: float = 0.05
    command_mean_abs_error: float = 0.01
    min_matched_fraction: float = 0.95    # matched chunks / chunks in the larger run
    max_interval_p95_ratio: float = 1.5   # new inter-chunk interval p95 / golden's
    stamp_tolerance_s: float = 1e-3
    command_align: str = 'time'           # 'time' (since first command) or 'index'


@dataclass
class ActionRun:
    """The action outputs of one bag, as arrays."""

    path: Path
    joint_names: list[str]
    chunk_stamps_ns: np.ndarray            # (C,) observation times
    chunk_recv_ns: np.ndarray              # (C,) receive times in the bag
    chunks: list[np.ndarray]               # C arrays of (H, D)
    command_recv_ns: np.ndarray            # (N,)
    commands: np.ndarray                   # (N, D)

    @property
    def command_t_s(self) -> np.ndarray:
        """Command times relative to the first command."""
        if not len(self.command_recv_ns):
            return np.zeros(0)
        return (self.command_recv_ns - self.command_recv_ns[0]) / 1e9


def _command_vector(msg, msgtype: str) -> list[float]:
    if msgtype == 'std_msgs/msg/Float64MultiArray':
        return list(msg.data)
    if msgtype == 'trajectory_msgs/msg/JointTrajectory':
        return list(msg.points[0].positions) if msg.points else []
    if msgtype == 'geometry_msgs/msg/TwistStamped':
        t = msg.twist
        return [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
    raise BagReadError(f'command topic has unsupported type {msgtype}')


def load_actions(path: str | Path, chunk_topic: str = CHUNK_TOPIC,
                 command_topic: str = COMMAND_TOPIC) -> ActionRun:
    """Read the chunk and command streams of a bag (either may be absent: empty arrays)."""
    names: list[str] = []
    stamps, recv, chunks, cmd_recv, cmds = [], [], [], [], []
    with BagReader(path, [chunk_topic, command_topic], require_importable=False) as bag:
        wanted = bag.requested
        for m in bag.messages():
            msg, _ = decode_cdr(m.data, m.msgtype)
            if m.topic == wanted[0]:
                stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                recv.append(m.timestamp_ns)
                chunks.append(np.array([p.positions for p in msg.points], dtype=np.float64)
                              if msg.points else np.zeros((0, 0)))
                names = names or list(msg.joint_names)
            else:
                cmd_recv.append(m.timestamp_ns)
                cmds.append(_command_vector(msg, m.msgtype))
    widths = {len(c) for c in cmds}
    if len(widths) > 1:
        raise BagReadError(f'{path}: commands on {wanted[1]} have varying widths {widths}')
    commands = np.array(cmds, dtype=np.float64).reshape(len(cmds), widths.pop() if widths else 0)
    return ActionRun(Path(path), names, np.array(stamps, dtype=np.int64),
                     np.array(recv, dtype=np.int64), chunks, np.array(cmd_recv, dtype=np.int64),
                     commands)


def _interval_stats(recv_ns: np.ndarray) -> dict[str, float]:
    if len(recv_ns) < 2:
        return {}
    d = np.diff(np.sort(recv_ns)) / 1e6
    return {'mean_ms': float(d.mean()), 'p50_ms': float(np.percentile(d, 50)),
            'p95_ms': float(np.percentile(d, 95)), 'max_ms': float(d.max())}


def _per_joint(errors: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """errors (..., D) of absolute values -> {joint: {mean, max}}."""
    if not errors.size:
        return {}
    flat = errors.reshape(-1, errors.shape[-1])
    return {names[j] if j < len(names) else f'j{j}':
            {'mean_abs': float(flat[:, j].mean()), 'max_abs': float(flat[:, j].max())}
            for j in range(flat.shape[1])} if flat.size else {}


def match_chunks(golden: ActionRun, new: ActionRun, tolerance_s: float) -> list[tuple[int, int]]:
    """Pairs (golden index, new index) of chunks with the same observation stamp, each used once."""
    tol = int(tolerance_s * 1e9)
    order = np.argsort(new.chunk_stamps_ns, kind='stable')
    sorted_new = new.chunk_stamps_ns[order]
    used, pairs = set(), []
    for g, stamp in enumerate(golden.chunk_stamps_ns):
        i = int(np.searchsorted(sorted_new, stamp))
        best = None
        for k in (i - 1, i, i + 1):
            if 0 <= k < len(sorted_new) and int(order[k]) not in used \
                    and abs(int(sorted_new[k]) - int(stamp)) <= tol:
                if best is None or abs(int(sorted_new[k]) - stamp) < abs(
                        int(sorted_new[best]) - stamp):
                    best = k
        if best is not None:
            used.add(int(order[best]))
            pairs.append((g, int(order[best])))
    return pairs


def align_commands(golden: ActionRun, new: ActionRun, how: str) -> tuple[np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """(t_s, golden rows, new rows) of commands paired by time since first command, or index."""
    n_g, n_n = len(golden.commands), len(new.commands)
    if not n_g or not n_n:
        return np.zeros(0), np.zeros((0, golden.commands.shape[1])), np.zeros((0, 0))
    if how == 'index':
        n = min(n_g, n_n)
        return golden.command_t_s[:n], golden.commands[:n], new.commands[:n]
    if how != 'time':
        raise ValueError(f'command_align {how!r} must be "time" or "index"')
    tg, tn = golden.command_t_s, new.command_t_s
    period = float(np.median(np.diff(tg))) if n_g > 1 else 1.0
    idx = np.clip(np.searchsorted(tn, tg), 0, n_n - 1)
    prev = np.clip(idx - 1, 0, n_n - 1)
    nearest = np.where(np.abs(tn[prev] - tg) < np.abs(tn[idx] - tg), prev, idx)
    ok = np.abs(tn[nearest] - tg) <= period / 2
    return tg[ok], golden.commands[ok], new.commands[nearest[ok]]


@dataclass
class CompareResult:
    """Outcome: `passed`, the `failures` that decided it, and every figure in `metrics`."""

    passed: bool
    failures: list[str]
    metrics: dict
    thresholds: CompareThresholds
    golden: ActionRun = field(repr=False)
    new: ActionRun = field(repr=False)
    drift_t_s: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    drift_abs_error: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))

    def to_dict(self) -> dict:
        return {'passed': self.passed, 'failures': list(self.failures),
                'golden': str(self.golden.path), 'new': str(self.new.path),
                'thresholds': asdict(self.thresholds), 'metrics': self.metrics}

    def report(self) -> str:
        m, lines = self.metrics, []
        lines.append(f'replay comparison: {"PASSED" if self.passed else "FAILED"}')
        lines.append(f'  golden: {self.golden.path}  new: {self.new.path}')
        c, tol_ms = m['chunks'], self.thresholds.stamp_tolerance_s * 1e3
        lines.append(f'  chunks: golden {c["golden_count"]}, new {c["new_count"]}, matched '
                     f'{c["matched"]} by observation stamp (±{tol_ms:g} ms); unmatched golden '
                     f'{c["unmatched_golden"]}, unmatched new '
                     f'{c["unmatched_new"]}')
        for title, key in (('chunk error', 'chunk_error'), ('command error', 'command_error')):
            per = m[key]['per_joint']
            if per:
                lines.append(f'  {title} per joint (mean / max abs): ' + ', '.join(
                    f'{j} {v["mean_abs"]:.3g} / {v["max_abs"]:.3g}' for j, v in per.items()))
        d = m['command_error'].get('drift', {})
        if d:
            lines.append('  command drift, |error| first 10% -> last 10% (slope per s): '
                         + ', '.join(
                f'{j} {v["first_mean_abs"]:.3g} -> {v["last_mean_abs"]:.3g} '
                f'({v["slope_per_s"]:+.3g})' for j, v in d.items()))
        for run in ('golden', 'new'):
            s = m['chunk_intervals'][run]
            if s:
                lines.append(f'  chunk intervals {run} (ms): mean {s["mean_ms"]:.1f}, p50 '
                             f'{s["p50_ms"]:.1f}, p95 {s["p95_ms"]:.1f}, max {s["max_ms"]:.1f}')
        if self.failures:
            lines.append('  failures:')
            lines += [f'    - {f}' for f in self.failures]
        return '\n'.join(lines)


def _drift(t_s: np.ndarray, abs_err: np.ndarray, names: list[str]) -> dict:
    if len(t_s) < 2:
        return {}
    k = max(1, len(t_s) // 10)
    out = {}
    for j in range(abs_err.shape[1]):
        slope = float(np.polyfit(t_s, abs_err[:, j], 1)[0]) if np.ptp(t_s) > 0 else 0.0
        out[names[j] if j < len(names) else f'j{j}'] = {
            'first_mean_abs': float(abs_err[:k, j].mean()),
            'last_mean_abs': float(abs_err[-k:, j].mean()), 'slope_per_s': slope}
    return out


def compare_runs(golden: ActionRun | str | Path, new: ActionRun | str | Path,
                 thresholds: CompareThresholds | None = None) -> CompareResult:
    """Compare two runs (bags or loaded ActionRuns); never raises for a mere mismatch."""
    th = thresholds or CompareThresholds()
    g = golden if isinstance(golden, ActionRun) else load_actions(golden)
    n = new if isinstance(new, ActionRun) else load_actions(new)
    names = g.joint_names or n.joint_names
    failures: list[str] = []
    if not len(g.chunks) and not len(g.commands):
        failures.append(f'golden bag {g.path} has no messages on {CHUNK_TOPIC} or {COMMAND_TOPIC}')

    pairs = match_chunks(g, n, th.stamp_tolerance_s)
    matched_g = {p[0] for p in pairs}
    matched_n = {p[1] for p in pairs}
    larger = max(len(g.chunks), len(n.chunks))
    fraction = len(pairs) / larger if larger else 1.0
    shape_bad = [(gi, ni) for gi, ni in pairs if g.chunks[gi].shape != n.chunks[ni].shape]
    errs = [np.abs(n.chunks[ni] - g.chunks[gi]) for gi, ni in pairs if (gi, ni) not in shape_bad]
    chunk_err = np.concatenate(errs) if errs else np.zeros((0, 0))
    chunk_per = _per_joint(chunk_err, names)
    chunks = {'golden_count': len(g.chunks), 'new_count': len(n.chunks), 'matched': len(pairs),
              'matched_fraction': fraction,
              'unmatched_golden': len(g.chunks) - len(matched_g),
              'unmatched_new': len(n.chunks) - len(matched_n),
              'unmatched_golden_stamps_s': [int(g.chunk_stamps_ns[i]) / 1e9 for i in
                                            range(len(g.chunks)) if i not in matched_g][:20],
              'shape_mismatches': len(shape_bad)}
    if larger and fraction < th.min_matched_fraction:
        failures.append(f'only {len(pairs)} of {larger} chunks matched by observation stamp '
                        f'({fraction:.0%} < {th.min_matched_fraction:.0%})')
    if shape_bad:
        gi, ni = shape_bad[0]
        failures.append(f'{len(shape_bad)} matched chunks differ in shape (e.g. golden '
                        f'{g.chunks[gi].shape} vs new {n.chunks[ni].shape})')
    chunk_summary = {'per_joint': chunk_per,
                     'mean_abs': float(chunk_err.mean()) if chunk_err.size else 0.0,
                     'max_abs': float(chunk_err.max()) if chunk_err.size else 0.0}
    if chunk_summary['max_abs'] > th.chunk_max_abs_error:
        failures.append(f'chunk max abs error {chunk_summary["max_abs"]:.3g} > '
                        f'{th.chunk_max_abs_error:g}')
    if chunk_summary['mean_abs'] > th.chunk_mean_abs_error:
        failures.append(f'chunk mean abs error {chunk_summary["mean_abs"]:.3g} > '
                        f'{th.chunk_mean_abs_error:g}')

    t_s, cg, cn = align_commands(g, n, th.command_align)
    command_summary: dict = {'golden_count': len(g.commands), 'new_count': len(n.commands),
                             'aligned': len(t_s), 'per_joint': {}, 'drift': {}}
    abs_err = np.zeros((0, 0))
    if len(g.commands) and not len(n.commands):
        failures.append(f'the new run has no commands on {COMMAND_TOPIC}')
    elif len(t_s) and cg.shape[1] != cn.shape[1]:
        failures.append(f'command widths differ: golden {cg.shape[1]} vs new {cn.shape[1]}')
    elif len(t_s):
        abs_err = np.abs(cn - cg)
        command_summary.update(per_joint=_per_joint(abs_err, names),
                               mean_abs=float(abs_err.mean()), max_abs=float(abs_err.max()),
                               drift=_drift(t_s, abs_err, names))
        if command_summary['max_abs'] > th.command_max_abs_error:
            failures.append(f'command max abs error {command_summary["max_abs"]:.3g} > '
                            f'{th.command_max_abs_error:g}')
        if command_summary['mean_abs'] > th.command_mean_abs_error:
            failures.append(f'command mean abs error {command_summary["mean_abs"]:.3g} > '
                            f'{th.command_mean_abs_error:g}')

    intervals = {'golden': _interval_stats(g.chunk_recv_ns),
                 'new': _interval_stats(n.chunk_recv_ns)}
    if intervals['golden'] and intervals['new'] and intervals['golden']['p95_ms'] > 0:
        ratio = intervals['new']['p95_ms'] / intervals['golden']['p95_ms']
        intervals['p95_ratio'] = ratio
        if ratio > th.max_interval_p95_ratio:
            failures.append(f'inter-chunk interval p95 {intervals["new"]["p95_ms"]:.1f} ms is '
                            f'{ratio:.2f}x the golden {intervals["golden"]["p95_ms"]:.1f} ms '
                            f'(> {th.max_interval_p95_ratio:g}x)')
    metrics = {'chunks': chunks, 'chunk_error': chunk_summary, 'command_error': command_summary,
               'chunk_intervals': intervals}
    return CompareResult(not failures, failures, metrics, th, g, n, t_s, abs_err)


# -- compare two bags from the command line (`vla-edge replay-test` reuses the thresholds) -----

def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """Flags for comparing a new run's bag with a golden bag; `run_compare(args)` executes them."""
    p.add_argument('golden', type=Path, help='golden bag (reference run)')
    p.add_argument('new', type=Path, help='bag of the run under test')
    add_threshold_arguments(p)
    p.add_argument('--json', type=Path, default=None, help='also write the result as JSON')
    p.add_argument('--plot', type=Path, default=None,
                   help='also draw golden vs new per joint into this PNG (needs matplotlib)')


def add_threshold_arguments(p: argparse.ArgumentParser) -> None:
    """The pass/fail limits as flags (`thresholds_from_args(args)` reads them back)."""
    d = CompareThresholds()
    p.add_argument('--chunk-max-abs-error', type=float, default=d.chunk_max_abs_error,
                   help=f'largest |new - golden| in any matched chunk (default: '
                        f'{d.chunk_max_abs_error:g})')
    p.add_argument('--chunk-mean-abs-error', type=float, default=d.chunk_mean_abs_error,
                   help=f'mean over matched chunks (default: {d.chunk_mean_abs_error:g})')
    p.add_argument('--command-max-abs-error', type=float, default=d.command_max_abs_error,
                   help=f'largest command error (default: {d.command_max_abs_error:g})')
    p.add_argument('--command-mean-abs-error', type=float, default=d.command_mean_abs_error,
                   help=f'mean command error (default: {d.command_mean_abs_error:g})')
    p.add_argument('--min-matched-fraction', type=float, default=d.min_matched_fraction,
                   help=f'chunks matched by stamp / chunks in the larger run (default: '
                        f'{d.min_matched_fraction:g})')
    p.add_argument('--max-interval-p95-ratio', type=float, default=d.max_interval_p95_ratio,
                   help=f'new/golden p95 inter-chunk interval (default: '
                        f'{d.max_interval_p95_ratio:g})')
    p.add_argument('--stamp-tolerance-s', type=float, default=d.stamp_tolerance_s,
                   help=f'chunk stamp matching tolerance (default: {d.stamp_tolerance_s:g})')
    p.add_argument('--command-align', choices=('time', 'index'), default=d.command_align,
                   help='pair commands by time since the first command, or by index '
                        f'(default: {d.command_align})')


def thresholds_from_args(args: argparse.Namespace) -> CompareThresholds:
    return CompareThresholds(
        chunk_max_abs_error=args.chunk_max_abs_error,
        chunk_mean_abs_error=args.chunk_mean_abs_error,
        command_max_abs_error=args.command_max_abs_error,
        command_mean_abs_error=args.command_mean_abs_error,
        min_matched_fraction=args.min_matched_fraction,
        max_interval_p95_ratio=args.max_interval_p95_ratio,
        stamp_tolerance_s=args.stamp_tolerance_s, command_align=args.command_align)


def run_compare(args: argparse.Namespace) -> int:
    """Print the report (and write JSON/PNG); exit status 0 when passed, 1 when not."""
    result = compare_runs(args.golden, args.new, thresholds_from_args(args))
    print(result.report())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    if args.plot is not None:
        from vla_edge.replay.overlay_plot import plot_overlay

        print(f'wrote {plot_overlay(result, args.plot)}')
    return 0 if result.passed else 1


def compare_main(argv: list[str] | None = None) -> int:
    """Standalone comparison (python -m vla_edge.replay.compare GOLDEN NEW ...)."""
    parser = argparse.ArgumentParser(prog='python -m vla_edge.replay.compare',
                                     description=__doc__.split('\n')[0])
    add_compare_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_compare(args)
    except (VlaEdgeError, ValueError) as exc:
        print(f'compare: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(compare_main())
