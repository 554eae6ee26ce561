import subprocess
import sys

import numpy as np
import pytest

from vla_edge.core.errors import InputError
from vla_edge.sim.env import TeaTableEnv


@pytest.fixture
def obs():
    return TeaTableEnv().reset(1_000_003)


def test_plan_chunk_shape_and_determinism(reference_runtime, obs):
    rt = reference_runtime
    v = rt.encode_image(obs.image, stamp_s=1.25)
    a = rt.plan_chunk(v, obs.instruction, obs.state, seed=7)
    b = rt.plan_chunk(v, obs.instruction, obs.state, seed=7)
    c = rt.plan_chunk(v, obs.instruction, obs.state, seed=8)
    m = rt.manifest
    assert a.actions.shape == (m.chunk_length, m.action_dim)
    assert np.array_equal(a.actions, b.actions) and not np.array_equal(a.actions, c.actions)
    assert a.observation_stamp_s == 1.25
    assert set(a.stage_latency_s) >= {'backbone', 'action_expert'}


def test_unseeded_chunks_draw_fresh_noise_each_time(reference_runtime, obs):
    rt = reference_runtime
    v = rt.encode_image(obs.image)
    chunks = [rt.plan_chunk(v, obs.instruction, obs.state).actions for _ in range(3)]
    assert not np.array_equal(chunks[0], chunks[1])
    assert not np.array_equal(chunks[1], chunks[2])


def test_instruction_embeddings_are_cached_and_unit_norm(reference_runtime):
    rt = reference_runtime
    e1 = rt.encode_instruction('put the tea bag in the mug')
    e2 = rt.encode_instruction('  Put the tea bag  in the mug ')
    assert e1 is e2
    assert np.linalg.norm(e1) == pytest.approx(1.0, abs=1e-5)


def test_paraphrases_embed_close_and_other_tasks_far(reference_runtime):
    rt = reference_runtime
    a = rt.encode_instruction('put the tea bag in the mug')
    b = rt.encode_instruction('drop the teabag into the cup')
    c = rt.encode_instruction('put the red block in the bowl')
    assert a @ b > 0.8 and a @ c < 0.5


def test_committed_prefix_is_kept_exactly(reference_runtime, obs):
    rt = reference_runtime
    v = rt.encode_image(obs.image)
    prefix = np.array([[0.3, -0.2, -1.0]] * 6, np.float32)
    chunk = rt.plan_chunk(v, obs.instruction, obs.state, seed=1, prefix=prefix).actions
    assert np.array_equal(chunk[:6], prefix)


@pytest.mark.parametrize('prefix', [np.zeros((0, 3)), np.zeros((60, 3)), np.zeros((4, 2)),
                                    np.full((3, 3), np.nan), np.full((3, 3), 1e30),
                                    np.full((3, 3), 1e308), np.full((3, 3), -50.0)])
def test_bad_prefix_is_rejected(reference_runtime, obs, prefix):
    v = reference_runtime.encode_image(obs.image)
    with pytest.raises(InputError):
        reference_runtime.plan_chunk(v, obs.instruction, obs.state, prefix=prefix)


def test_wrong_noise_shape_is_rejected(reference_runtime, obs):
    v = reference_runtime.encode_image(obs.image)
    with pytest.raises(InputError, match='noise must have shape'):
        reference_runtime.plan_chunk(v, obs.instruction, obs.state, noise=np.zeros((10, 3)))


def test_runtime_never_imports_torch(reference_model_dir):
    code = (
        'import sys\n'
        'from vla_edge.core.runtime import PolicyRuntime\n'
        'from vla_edge.sim.env import TeaTableEnv\n'
        f'rt = PolicyRuntime({str(reference_model_dir)!r})\n'
        'o = TeaTableEnv().reset(1000000)\n'
        'c = rt.plan_chunk(rt.encode_image(o.image), o.instruction, o.state, seed=0)\n'
        'assert c.actions.shape[0] > 0\n'
        'print("torch" in sys.modules)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'


def test_unavailable_provider_falls_back_to_cpu(reference_model_dir, caplog):
    from vla_edge.core.onnx_session import SessionOptions
    from vla_edge.core.runtime import PolicyRuntime

    caplog.set_level('WARNING', logger='vla_edge.runtime')
    rt = PolicyRuntime(reference_model_dir,
                       SessionOptions(providers=('NoSuchExecutionProvider',
                                                 'CPUExecutionProvider')))
    assert rt.sessions['backbone'].get_providers() == ['CPUExecutionProvider']
    assert 'NoSuchExecutionProvider' in caplog.text


@pytest.mark.parametrize('shape, mode', [(['batch'], 'inpaint'), (['batch', 50], 'clean'),
                                         (['batch', 49], None), (['batch', 50, 1], None)])
def test_prefix_mode_follows_the_declared_tau(reference_model_dir, shape, mode):
    """A per-action tau marks a model trained with committed prefixes; anything else is named."""
    from dataclasses import replace

    from vla_edge.core.errors import ModelLoadError
    from vla_edge.core.manifest import load_manifest
    from vla_edge.core.runtime import prefix_mode

    m = load_manifest(reference_model_dir, verify_hashes=False)
    expert = m.stages['action_expert']
    inputs = tuple(replace(t, shape=tuple(shape)) if t.name == 'tau' else t
                   for t in expert.inputs)
    m = replace(m, stages={**m.stages, 'action_expert': replace(expert, inputs=inputs)})
    if mode is None:
        with pytest.raises(ModelLoadError, match=r'tau must be \[batch\].*\[batch, 50\]'):
            prefix_mode(m)
    else:
        assert prefix_mode(m) == mode


def test_a_chunk_outside_the_models_action_range_is_refused(reference_runtime, obs):
    """The same check as for prefixes guards the model's own output (a corrupted model): here
    a range narrowed to nothing makes every real chunk fall outside it."""
    from vla_edge.core.action_range import ActionRange
    from vla_edge.core.errors import ModelOutputError

    rt = reference_runtime
    v = rt.encode_image(obs.image)
    wide = rt.action_range
    try:
        rt.action_range = ActionRange(wide.mean, wide.std, limit_std=1e-9)
        with pytest.raises(ModelOutputError, match="model's chunk refused: a value is"):
            rt.plan_chunk(v, obs.instruction, obs.state, seed=1)
    finally:
        rt.action_range = wide
    assert rt.plan_chunk(v, obs.instruction, obs.state, seed=1).actions.shape[0] > 0
