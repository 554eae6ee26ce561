"""Golden vs new action outputs: identical runs pass with zero error, perturbed runs fail with a
report that says why, the overlay PNG is drawn."""
import json

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray

from vla_edge.nodes.messages import chunk_to_trajectory
from vla_edge.replay.bag_writer import write_bag
from vla_edge.replay.compare import (
    CompareThresholds,
    compare_main,
    compare_runs,
    load_actions,
)
from vla_edge.replay.overlay_plot import plot_overlay

RATE = 50.0
H = 10
NAMES = ['vx', 'vy', 'grip']
T0 = 1_700_000_000.0


def run_bag(path, chunk_offset=0.0, drift_per_s=0.0, drop_chunks=(), recv_shift_s=0.0):
    """A fake pipeline run: a chunk every 0.2 s (stamp = observation time, arriving 50 ms later),
    a command every 20 ms. `drift_per_s` adds a growing error to the commands."""
    msgs = []
    for c in range(15):
        if c in drop_chunks:
            continue
        obs_s = T0 + 0.2 * c
        k = np.arange(H)[:, None]
        actions = np.hstack([np.sin(obs_s - T0 + k / RATE), np.cos(obs_s - T0 + k / RATE),
                             np.full((H, 1), c % 2)]) + chunk_offset
        msgs.append(('/action_chunk', chunk_to_trajectory(actions, obs_s, RATE, NAMES),
                     int((obs_s + 0.05 + recv_shift_s) * 1e9)))
    for i in range(150):
        t = 0.05 + i / RATE
        value = [np.sin(t), np.cos(t), float(int(t / 0.2) % 2)]
        msgs.append(('/command_raw', Float64MultiArray(data=[v + drift_per_s * t for v in value]),
                     int((T0 + t + recv_shift_s) * 1e9)))
    msgs.sort(key=lambda m: m[2])
    write_bag(path, msgs)
    return path


@pytest.fixture(scope='module')
def golden(tmp_path_factory):
    return run_bag(tmp_path_factory.mktemp('golden') / 'bag')


def test_loading_a_bag_gives_chunks_by_observation_stamp_and_commands(golden):
    run = load_actions(golden)
    assert run.joint_names == NAMES and len(run.chunks) == 15 and run.chunks[0].shape == (H, 3)
    assert run.chunk_stamps_ns[1] - run.chunk_stamps_ns[0] == pytest.approx(0.2e9, abs=1000)
    assert run.commands.shape == (150, 3)


def test_identical_runs_pass_with_zero_error(golden, tmp_path):
    # same outputs, received 3 s later: matching is by stamp and by time since first command
    result = compare_runs(golden, run_bag(tmp_path / 'new', recv_shift_s=3.0))
    assert result.passed, result.report()
    m = result.metrics
    assert m['chunks']['matched'] == 15 and m['chunks']['unmatched_new'] == 0
    assert m['chunk_error']['max_abs'] == 0.0 and m['command_error']['max_abs'] == 0.0
    assert m['command_error']['aligned'] == 150
    assert m['chunk_intervals']['p95_ratio'] == pytest.approx(1.0)
    assert 'PASSED' in result.report()
    json.dumps(result.to_dict())                  # JSON-ready


def test_a_perturbed_run_fails_with_a_readable_report_and_plot(golden, tmp_path):
    new = run_bag(tmp_path / 'new', chunk_offset=0.01, drift_per_s=0.05, drop_chunks=(3, 4))
    result = compare_runs(golden, new)
    assert not result.passed
    report = result.report()
    print(report)
    assert 'FAILED' in report
    assert any('chunk max abs error 0.01 > 0.001' in f for f in result.failures)
    assert any('only 13 of 15 chunks matched' in f for f in result.failures)
    assert any('command max abs error' in f for f in result.failures)
    drift = result.metrics['command_error']['drift']['vx']
    assert drift['last_mean_abs'] > drift['first_mean_abs'] and drift['slope_per_s'] == \
        pytest.approx(0.05, rel=0.05)
    per_joint = result.metrics['chunk_error']['per_joint']
    assert per_joint['grip']['mean_abs'] == pytest.approx(0.01)
    png = plot_overlay(result, tmp_path / 'overlay.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000


def test_thresholds_decide(golden, tmp_path):
    new = run_bag(tmp_path / 'new', chunk_offset=0.01)
    loose = CompareThresholds(chunk_max_abs_error=0.02, chunk_mean_abs_error=0.02,
                              command_max_abs_error=0.1)
    assert compare_runs(golden, new, loose).passed
    assert not compare_runs(golden, new).passed


def test_compare_main_exit_codes_json_and_png(golden, tmp_path, capsys):
    same = run_bag(tmp_path / 'same')
    assert compare_main([str(golden), str(same), '--json', str(tmp_path / 'r.json')]) == 0
    assert json.loads((tmp_path / 'r.json').read_text())['passed'] is True
    worse = run_bag(tmp_path / 'worse', chunk_offset=0.5)
    assert compare_main([str(golden), str(worse), '--plot', str(tmp_path / 'p.png')]) == 1
    assert (tmp_path / 'p.png').is_file()
    assert compare_main([str(golden), str(tmp_path / 'missing')]) == 2
    assert 'no bag at' in capsys.readouterr().err
