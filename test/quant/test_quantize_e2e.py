import json
import time

import numpy as np
import pytest

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
    # and it runs like the FP32 folder
    rt = PolicyRuntime(out)
    obs = TeaTableEnv().reset(2_000_000)
    chunk = rt.plan_chunk(rt.encode_image(obs.image), obs.instruction, obs.state, seed=0)
    assert chunk.actions.shape == (manifest.chunk_length, manifest.action_dim)
    assert np.all(np.isfinite(chunk.actions))


def test_bag_calibration_says_it_is_not_supported(tmp_path, reference_model_dir):
    with pytest.raises(VlaEdgeError, match='bag calibration not yet supported'):
        collect_bag(tmp_path / 'bag', reference_model_dir)
