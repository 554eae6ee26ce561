import json
import subprocess
import sys

import pytest

from vla_edge.cli import main

REQUIRED = {'success_rate': float, 'mean_time_to_completion_s': (float, type(None)),
            'stalled_ticks': int, 'episodes': int, 'mode': str}


def test_eval_writes_the_documented_json(tmp_path):
    out = tmp_path / 'eval.json'
    assert main(['eval', '--episodes', '3', '--mode', 'async', '--latency-ms', '20',
                 '--json', str(out)]) == 0
    data = json.loads(out.read_text())
    for key, typ in REQUIRED.items():
        assert isinstance(data[key], typ), key
    assert data['mode'] == 'async' and data['episodes'] == 3
    assert len(data['per_episode']) == 3


def test_eval_refuses_training_seeds(capsys):
    assert main(['eval', '--episodes', '5', '--seed-offset', '10']) == 2
    assert 'overlap the training seeds' in capsys.readouterr().err


def test_eval_reports_a_missing_model_clearly(tmp_path, capsys):
    assert main(['eval', '--model', str(tmp_path / 'none'), '--episodes', '1']) == 2
    err = capsys.readouterr().err
    assert 'does not exist' in err and 'Traceback' not in err


def test_demo_virtual_clock_part_writes_all_evaluations(tmp_path, capsys):
    out = tmp_path / 'demo.json'
    assert main(['demo', '--skip-ros', '--eval-episodes', '2', '--latency-ms', '20',
                 '--json', str(out)]) == 0
    data = json.loads(out.read_text())['virtual_clock']
    assert set(data) == {'sync', 'async', 'heldout_phrasing', 'swapped_object', 'emulated_edge'}
    assert data['heldout_phrasing']['phrasing'] == 'heldout'
    assert data['swapped_object']['swap_object'] is True
    edge = data['emulated_edge']
    assert edge['emulated'] is True and edge['latency_s'] == pytest.approx(0.3)
    assert (edge['async']['mode'], edge['sync']['mode']) == ('async', 'sync')
    assert edge['async']['latency_source'] == 'given 300 ms'
    assert 'EMULATED_edge_async' in capsys.readouterr().out     # labelled in the printout


def test_demo_real_time_part_writes_the_documented_json(tmp_path):
    out, png = tmp_path / 'demo.json', tmp_path / 'timeline.png'
    assert main(['demo', '--episodes', '1', '--eval-episodes', '1', '--json', str(out),
                 '--png', str(png)]) == 0
    data = json.loads(out.read_text())
    modes = [data['async'], data['sync'], data['emulated_edge']['async'],
             data['emulated_edge']['sync']]
    assert data['emulated_edge']['latency_fraction'] == 0.3
    for m in modes:
        for key in ('success_rate', 'mean_time_to_completion_s', 'stalled_ticks',
                    'jitter_p99_ms', 'switch_discontinuity_ratio', 'latency_ms'):
            assert key in m, key
        assert {'vision_encoder', 'backbone', 'action_expert'} <= set(m['latency_ms'])
        assert set(m['latency_ms']['backbone']) == {'p50', 'p95'}
    assert png.stat().st_size > 10_000


def test_console_script_help_lists_the_verbs():
    out = subprocess.run([sys.executable, '-m', 'vla_edge.cli', '--help'], capture_output=True,
                         text=True, check=True).stdout
    for verb in ('demo', 'eval', 'train', 'export', 'bench'):
        assert verb in out


def test_eval_expert_reports_the_scripted_ceiling(tmp_path):
    out = tmp_path / 'expert.json'
    assert main(['eval', '--expert', '--episodes', '5', '--json', str(out)]) == 0
    data = json.loads(out.read_text())
    assert data['success_rate'] == 1.0 and data['episodes'] == 5
    assert data['mean_time_to_completion_s'] > 0.5


def test_a_verb_whose_extra_is_missing_says_which_extra_to_install():
    import argparse

    import pytest

    from vla_edge.cli import _optional_verb
    from vla_edge.core.errors import VlaEdgeError

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    _optional_verb(sub, 'record', 'help', 'vla_edge.no_such_module', 'add', 'run', 'replay', None)
    args = parser.parse_args(['record', 'some', 'args'])
    with pytest.raises(VlaEdgeError, match=r"record needs pip install 'vla_edge\[replay\]'"):
        args.func(args)
