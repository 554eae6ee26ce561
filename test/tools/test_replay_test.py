"""`vla-edge replay-test` end to end, over DDS with the real ONNX runtime: a live sim run is
recorded to a bag, a golden is written from it, two deterministic replays match each other and
the golden exactly, and a model with one perturbed weight matrix fails with a report that says
what differed. Each ROS step runs on its own domain (60-79), localhost-only discovery."""
import hashlib
import json
import os

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import Image, JointState

from vla_edge.replay.bag_reader import BagReader
from vla_edge.replay.bag_writer import write_bag
from vla_edge.replay.compare import CompareThresholds, compare_runs
from vla_edge.tools.pipeline_replay import ReplayTestConfig, record_sim_run, write_golden
from vla_edge.tools.replay_test import replay_test_main

os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
SIM_SECONDS = 3.0


@pytest.fixture(scope='module')
def bags(tmp_path_factory, reference_runtime):
    """(sim run, golden): a live closed-loop episode, then the golden written from its inputs."""
    tmp = tmp_path_factory.mktemp('replay_test')
    sim = record_sim_run(tmp / 'sim_run', SIM_SECONDS, ReplayTestConfig(domain_id=60),
                         runtime=reference_runtime)
    counts = sim.message_counts
    assert counts['/camera/image_raw'] >= 20 * SIM_SECONDS, counts      # 30 Hz camera
    assert counts['/joint_states'] >= 35 * SIM_SECONDS, counts          # 50 Hz robot
    assert counts['/instruction'] >= 1 and counts['/action_chunk'] >= 2, counts
    stats = write_golden(tmp / 'sim_run', tmp / 'golden', ReplayTestConfig(domain_id=61),
                         runtime=reference_runtime)
    assert stats['lockstep']['timed_out'] == 0, stats['lockstep']
    return tmp / 'sim_run', tmp / 'golden'


def test_two_deterministic_replays_match_each_other_and_the_golden_exactly(bags, tmp_path,
                                                                          capsys):
    sim_run, golden = bags
    with BagReader(golden) as bag:     # self-contained: the sim run's inputs + replayed outputs
        assert set(bag.topics) == {'/camera/image_raw', '/joint_states', '/instruction',
                                   '/action_chunk', '/command_raw'}
        frames = bag.topics['/camera/image_raw'].message_count
    outs = [tmp_path / f'out{i}' for i in (1, 2)]
    for domain, out in zip((62, 63), outs):
        assert replay_test_main([str(golden), '--golden', str(golden), '--out', str(out),
                                 '--domain-id', str(domain)]) == 0
        assert {p.name for p in out.iterdir()} == {'run', 'report.txt', 'result.json',
                                                   'overlay.png'}
        result = json.loads((out / 'result.json').read_text())
        assert result['passed'] and result['model']['changed_stages'] == []
        assert result['replay']['lockstep']['timed_out'] == 0
    assert 'replay comparison: PASSED' in capsys.readouterr().out

    exact = CompareThresholds(chunk_max_abs_error=0.0, chunk_mean_abs_error=0.0,
                              command_max_abs_error=0.0, command_mean_abs_error=0.0,
                              min_matched_fraction=1.0)
    for a, b in ((outs[0] / 'run', outs[1] / 'run'), (golden, outs[0] / 'run')):
        r = compare_runs(a, b, exact)
        assert r.passed, r.report()
        chunks = r.metrics['chunks']
        # Every frame after the first state got its chunk (a frame before any state is skipped).
        assert chunks['matched'] == chunks['golden_count'] == chunks['new_count'] >= frames - 5
        assert r.metrics['chunk_error']['max_abs'] == 0.0
        assert r.metrics['command_error']['max_abs'] == 0.0
        assert r.metrics['command_error']['aligned'] == r.metrics['command_error']['new_count']

    # The live run itself is not reproducible (chunks requested by the executor, planned from
    # whichever frame and states had arrived): it is kept for reference, not the golden.
    live = compare_runs(golden, sim_run)
    assert live.metrics['chunks']['new_count'] < live.metrics['chunks']['golden_count']


def perturbed_model(reference, folder):
    """The reference model with the action expert's first weight matrix shifted by +0.05 (the
    other files linked), its manifest sha256 rewritten so that the model loads."""
    import onnx
    from onnx import numpy_helper

    folder.mkdir()
    for f in reference.iterdir():
        if f.name not in ('manifest.yaml', 'action_expert.onnx'):
            (folder / f.name).symlink_to(f.resolve())
    model = onnx.load(reference / 'action_expert.onnx')
    weight = next(i for i in model.graph.initializer if i.name.endswith('weight')
                  and len(i.dims) == 2)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + np.float32(0.05),
                                            weight.name))
    onnx.save(model, folder / 'action_expert.onnx')
    raw = yaml.safe_load((reference / 'manifest.yaml').read_text())
    raw['stages']['action_expert']['sha256'] = hashlib.sha256(
        (folder / 'action_expert.onnx').read_bytes()).hexdigest()
    (folder / 'manifest.yaml').write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def test_a_perturbed_weight_fails_with_a_report_naming_what_differed(bags, tmp_path,
                                                                    reference_model_dir, capsys):
    _, golden = bags
    model = perturbed_model(reference_model_dir, tmp_path / 'perturbed')
    out = tmp_path / 'out'
    assert replay_test_main([str(golden), '--golden', str(golden), '--out', str(out),
                             '--model', str(model), '--domain-id', '64']) == 1
    printed = capsys.readouterr().out
    report = (out / 'report.txt').read_text()
    assert report.strip() in printed
    assert 'replay comparison: FAILED' in report
    assert 'chunk max abs error' in report and 'command max abs error' in report
    assert "model files that differ from the golden's (sha256): action_expert" in report
    assert str(model) in report
    result = json.loads((out / 'result.json').read_text())
    assert not result['passed'] and result['model']['changed_stages'] == ['action_expert']
    assert result['metrics']['chunks']['matched_fraction'] == 1.0   # same frames, other actions
    assert result['metrics']['chunk_error']['max_abs'] > 0.01
    assert (out / 'overlay.png').stat().st_size > 10_000


def test_bad_bags_and_arguments_are_clear_errors_and_write_nothing(tmp_path, capsys):
    state = JointState(name=['x', 'y', 'gripper'], position=[0.0] * 3, velocity=[0.0] * 3)
    states_only, usable = tmp_path / 'states_only', tmp_path / 'usable'
    write_bag(states_only, [('/joint_states', state, 1_000_000_000)])
    write_bag(usable, [('/joint_states', state, 1_000_000_000),
                       ('/camera/image_raw', Image(height=1, width=1, encoding='rgb8', step=3,
                                                   data=bytes(3)), 1_010_000_000)])
    out = tmp_path / 'out'
    cases = [([str(states_only), '--golden', str(states_only)], 'lacks a camera topic'),
             ([str(tmp_path / 'none'), '--golden', str(usable)], 'no bag at'),
             ([str(usable), '--golden', str(tmp_path / 'none')], 'no golden bag at'),
             ([str(usable)], 'nothing to do')]
    for argv, message in cases:
        assert replay_test_main([*argv, '--out', str(out), '--domain-id', '65']) == 2, argv
        err = capsys.readouterr().err
        assert message in err and 'Traceback' not in err, err
        assert not out.exists()


def _usable_bag(path):
    state = JointState(name=['x', 'y', 'gripper'], position=[0.0] * 3, velocity=[0.0] * 3)
    write_bag(path, [('/joint_states', state, 1_000_000_000),
                     ('/camera/image_raw', Image(height=1, width=1, encoding='rgb8', step=3,
                                                 data=bytes(3)), 1_010_000_000)])
    return path


@pytest.mark.parametrize('flags, message', [
    (['--min-matched-fraction', '5'], '--min-matched-fraction must be in [0, 1], got 5'),
    (['--min-matched-fraction', '-0.1'], '--min-matched-fraction must be in [0, 1], got -0.1'),
    (['--chunk-max-abs-error', '-1'], '--chunk-max-abs-error must be >= 0, got -1'),
    (['--max-interval-p95-ratio', '0'], '--max-interval-p95-ratio must be > 0, got 0'),
])
def test_impossible_thresholds_are_refused_before_the_replay(tmp_path, capsys, monkeypatch,
                                                             flags, message):
    import vla_edge.tools.replay_test as rt

    def no_replay(*args, **kwargs):
        raise AssertionError('replayed before the thresholds were checked')
    monkeypatch.setattr(rt, 'replay_through_pipeline', no_replay)
    usable, out = _usable_bag(tmp_path / 'usable'), tmp_path / 'out'
    assert replay_test_main([str(usable), '--golden', str(usable), '--out', str(out),
                             '--domain-id', '178', *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err, err
    assert not out.exists()


def test_a_model_that_cannot_load_is_refused_before_out_is_made(tmp_path, capsys, monkeypatch):
    import vla_edge.tools.replay_test as rt

    def no_replay(*args, **kwargs):
        raise AssertionError('replayed before the model was checked')
    monkeypatch.setattr(rt, 'replay_through_pipeline', no_replay)
    usable, out = _usable_bag(tmp_path / 'usable'), tmp_path / 'out'
    assert replay_test_main([str(usable), '--golden', str(usable), '--out', str(out),
                             '--model', str(tmp_path / 'nonexistent'),
                             '--domain-id', '179']) == 2
    err = capsys.readouterr().err
    assert f'model folder {tmp_path / "nonexistent"} does not exist' in err, err
    assert not out.exists()


def test_an_out_folder_made_by_a_failed_replay_is_not_left_behind(tmp_path, capsys,
                                                                  monkeypatch):
    import vla_edge.tools.replay_test as rt
    from vla_edge.core.errors import VlaEdgeError

    def failing_replay(*args, **kwargs):
        raise VlaEdgeError('the pipeline did not start')
    monkeypatch.setattr(rt, 'replay_through_pipeline', failing_replay)
    usable, out = _usable_bag(tmp_path / 'usable'), tmp_path / 'out'
    assert replay_test_main([str(usable), '--golden', str(usable), '--out', str(out),
                             '--domain-id', '179']) == 2
    assert 'the pipeline did not start' in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()                           # one the user made is kept
    assert replay_test_main([str(usable), '--golden', str(usable), '--out', str(out),
                             '--domain-id', '179']) == 2
    assert out.is_dir()


def test_a_model_folder_reaches_every_node_that_reads_its_rate(edited_model):
    """--model with a 30 Hz policy: the executor and the watchdog must both follow it, or bringup
    refuses the chain (watchdog at the reference's 50 Hz)."""
    from vla_edge.nodes.bringup import check_param_files, default_param_files
    from vla_edge.tools.pipeline_replay import _overrides

    model = edited_model(lambda manifest: manifest.update(control_rate_hz=30.0))
    overrides = _overrides(ReplayTestConfig(model_dir=model, with_watchdog=True), False)
    assert overrides['watchdog']['model_dir'] == str(model)
    check_param_files(default_param_files(), overrides, True, False)   # no mismatch
