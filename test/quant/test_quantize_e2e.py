import json
import time

import numpy as np
import pytest

from vla_edge.cli import main
from vla_edge.core.errors import VlaEdgeError
from vla_edge.core.manifest import load_manifest
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.quant.calibration import collect_bag
from vla_edge.quant.candidates import Recipe
from vla_edge.quant.pipeline import QuantizeConfig, quantize
from vla_edge.sim.env import TeaTableEnv


def test_quantize_end_to_end_loads_and_plans(reference_model_dir, tmp_path):
    out = tmp_path / 'quantized'
    recipes = [Recipe('fp32'), Recipe('qdq_int8', method='minmax'), Recipe('dynamic_int8'),
               Recipe('nbits', bits=8)]
    t0 = time.perf_counter()
    report = quantize(QuantizeConfig(reference_model_dir, out, episodes=2, repeats=5,
                                     recipes=recipes, drift_budget=1.0, progress=False))
    assert time.perf_counter() - t0 < 120
    # every stage measured every candidate, FP32 included, with finite figures
    for stage, rows in report['candidates'].items():
        assert {r['name'] for r in rows} == {r.name for r in recipes}, stage
        assert all(np.isfinite(r['latency_ratio']) and r['drift_mean'] >= 0 for r in rows)
        fp32 = next(r for r in rows if r['name'] == 'fp32')
        assert fp32['drift_mean'] == 0.0 and fp32['latency_ratio'] == 1.0
        # a chosen candidate is never slower than FP32
        chosen = next(r for r in rows if r['name'] == report['chosen'][stage])
        assert chosen['name'] == 'fp32' or chosen['latency_ratio'] < 1.0
    # the folder has the same format, the recorded precision and fresh hashes
    manifest = load_manifest(out)
    assert manifest.raw['quantization']['stages']['backbone']['name'] == \
        report['chosen']['backbone']
    assert manifest.stages['action_expert'].extra['precision'].startswith(
        report['chosen']['action_expert'])
    assert (out / 'tokenizer.json').is_file() and not (out / '_candidates').exists()
    saved = json.loads((out / 'quantization_report.json').read_text())
    assert saved['policy_step_speedup'] == pytest.approx(report['policy_step_speedup'])
    assert saved['decisions'] and (out / 'quantization_pareto.png').is_file()
    calib = saved['calibration']     # calibrated and measured on the same sim seeds
    assert (calib['source'], calib['episodes'], calib['first_seed']) == ('sim', 2, 2_000_000)
    assert calib['drift'] == {'source': 'sim', 'episodes': 2, 'first_seed': 2_000_000}
    assert manifest.raw['quantization']['calibration']['source'] == 'sim'
    # and it runs like the FP32 folder
    rt = PolicyRuntime(out)
    obs = TeaTableEnv().reset(2_000_000)
    chunk = rt.plan_chunk(rt.encode_image(obs.image), obs.instruction, obs.state, seed=0)
    assert chunk.actions.shape == (manifest.chunk_length, manifest.action_dim)
    assert np.all(np.isfinite(chunk.actions))


def test_quantize_cli_calibrates_from_a_bag_and_weighs_stage_exclusions(
        reference_model_dir, sim_bag, tmp_path, capsys):
    """`--calib BAG`: feeds from the bag's frames, drift still on sim seeds, and the backbone's
    `--exclude` variants measured beside the shared candidates."""
    out = tmp_path / 'quantized'
    t0 = time.perf_counter()
    rc = main(['quantize', str(reference_model_dir), '--out', str(out), '--calib',
               str(sim_bag.path), '--calib-max-frames', '6', '--episodes', '1', '--repeats', '3',
               '--methods', 'minmax', '--drift-budget', '1.0', '--exclude', r'backbone=kv\.',
               '--no-progress'])
    assert rc == 0 and time.perf_counter() - t0 < 120
    report = json.loads((out / 'quantization_report.json').read_text())
    calib = report['calibration']
    assert calib['source'] == 'bag' and calib['bag'] == str(sim_bag.path)
    assert (calib['frames_in_bag'], calib['frames_used'], calib['frames_skipped']) == (12, 6, 1)
    assert calib['feeds'] == {'vision_encoder': 6, 'backbone': 6, 'action_expert': 60}
    assert calib['drift'] == {'source': 'sim', 'episodes': 1, 'first_seed': 2_000_000,
                              'why': 'closed-loop drift needs a simulator: a bag cannot react '
                                     'to the policy'}
    assert calib['summary'] in report['decisions'] and 'bag' in capsys.readouterr().out
    assert load_manifest(out).raw['quantization']['calibration']['source'] == 'bag'
    # the exclusion variants exist for the backbone only, were measured, and keep kv.* in float
    names = {s: {r['name'] for r in rows} for s, rows in report['candidates'].items()}
    excl = {n for n in names['backbone'] if n.endswith('_excl1')}
    assert excl == {f'{n}_excl1' for n in names['vision_encoder'] if n != 'fp32'}
    assert not any('_excl' in n for n in names['vision_encoder'] | names['action_expert'])
    rows = {r['name']: r for r in report['candidates']['backbone']}
    assert all(rows[n]['recipe']['exclude'] == [r'kv\.'] for n in excl)
    assert np.isfinite(rows['int8_dynamic_excl1']['drift_mean'])
    assert rows['int8_dynamic_excl1']['latency_ratio'] > 0


def test_a_missing_bag_is_a_clear_error(tmp_path, reference_model_dir):
    with pytest.raises(VlaEdgeError, match='no bag at'):
        collect_bag(tmp_path / 'bag', reference_model_dir, progress=False)


@pytest.mark.parametrize('change, message', [
    ({'out_dir': None}, '--out must differ from the source model folder'),
    ({'episodes': 0}, 'drift episodes must be >= 1, got 0'),
    ({'repeats': 0}, 'latency repeats must be >= 1, got 0'),
])
def test_bad_settings_stop_quantize_before_the_model_loads(reference_model_dir, monkeypatch,
                                                           tmp_path, change, message):
    import vla_edge.quant.pipeline as pipeline

    def no_work(*args, **kwargs):
        raise AssertionError('the model was loaded before the settings were checked')
    monkeypatch.setattr(pipeline, 'PolicyRuntime', no_work)
    kwargs = {'out_dir': tmp_path / 'out', **change}
    if kwargs['out_dir'] is None:
        kwargs['out_dir'] = reference_model_dir.parent / '..' / reference_model_dir.parent.name \
            / reference_model_dir.name
    with pytest.raises(ValueError, match=message):
        quantize(QuantizeConfig(reference_model_dir, progress=False, **kwargs))
    assert not (reference_model_dir / '_candidates').exists() and not (tmp_path / 'out').exists()
