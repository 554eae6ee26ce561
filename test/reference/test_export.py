"""Export faithfulness: the ONNX stages compute what the torch policy computes."""
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_edge.core.manifest import STAGES, load_manifest
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.reference.export import export_policy
from vla_edge.reference.model import PolicyConfig, ReferencePolicy
from vla_edge.reference.train import load_checkpoint, save_checkpoint
from vla_edge.sim.env import TeaTableEnv

CHECKPOINT = Path(__file__).resolve().parents[2] / 'models' / 'checkpoints' / 'reference.pt'


def _torch_chunk(model, stats, rt, obs, noise, committed=None):
    """torch's chunk in action units; `committed` (d, A) in action units, fed clean."""
    emb = rt.encode_instruction(obs.instruction)
    state = ((obs.state - np.array(stats['state_mean'], np.float32))
             / np.array(stats['state_std'], np.float32)).astype(np.float32)
    a_mean, a_std = (np.array(stats[k], np.float32) for k in ('action_mean', 'action_std'))
    prefix = None if committed is None else torch.from_numpy(((committed - a_mean) / a_std)[None])
    x = model.sample(torch.from_numpy(obs.image[None]), torch.from_numpy(emb[None]),
                     torch.from_numpy(state[None]), torch.from_numpy(noise[None]),
                     rt.denoising_steps, committed=prefix)[0].numpy()
    return x * a_std + a_mean


@pytest.mark.parametrize('seed', [1_000_000, 1_000_001, 1_000_002])
def test_shipped_model_matches_its_torch_checkpoint(reference_runtime, seed):
    model, stats, _ = load_checkpoint(CHECKPOINT)
    env = TeaTableEnv()
    obs = env.reset(seed)
    for _ in range(seed % 3 * 20):
        env.step(env.expert_action())
    obs = env.observe()
    noise = np.random.default_rng(seed).standard_normal((50, 3)).astype(np.float32)
    onnx_chunk = reference_runtime.plan_chunk(reference_runtime.encode_image(obs.image),
                                              obs.instruction, obs.state, noise=noise).actions
    diff = np.abs(onnx_chunk - _torch_chunk(model, stats, reference_runtime, obs, noise)).max()
    assert diff <= 1e-4, f'ONNX vs torch max |delta| = {diff:.2e}'


def test_fresh_export_writes_a_complete_folder_that_matches_torch(tmp_path, reference_model_dir):
    torch.manual_seed(3)
    cfg = PolicyConfig(backbone_layers=2, expert_layers=2)
    model = ReferencePolicy(cfg).eval()
    stats = load_manifest(reference_model_dir).normalization
    ckpt = tmp_path / 'tiny.pt'
    save_checkpoint(ckpt, model, stats, {'training_seed_range': [0, 1]})
    out = tmp_path / 'tiny_model'
    export_policy(ckpt, out, denoising_steps=4, instruction_encoder_from=reference_model_dir)

    manifest = load_manifest(out)
    assert set(manifest.stages) == set(STAGES)
    assert manifest.denoising_steps == 4 and manifest.chunk_length == cfg.chunk_length
    assert manifest.stages['backbone'].inputs[0].name == 'visual_tokens'
    rt = PolicyRuntime(out)
    obs = TeaTableEnv().reset(1_000_010)
    noise = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    onnx_chunk = rt.plan_chunk(rt.encode_image(obs.image), obs.instruction, obs.state,
                               noise=noise).actions
    assert np.abs(onnx_chunk - _torch_chunk(model, stats, rt, obs, noise)).max() <= 1e-4


def _tiny_export(tmp_path, reference_model_dir, meta):
    torch.manual_seed(4)
    model = ReferencePolicy(PolicyConfig(backbone_layers=1, expert_layers=1)).eval()
    stats = load_manifest(reference_model_dir).normalization
    save_checkpoint(tmp_path / 'tiny.pt', model, stats, {'training_seed_range': [0, 1], **meta})
    export_policy(tmp_path / 'tiny.pt', tmp_path / 'tiny_model', denoising_steps=3,
                  instruction_encoder_from=reference_model_dir)
    return model, stats, PolicyRuntime(tmp_path / 'tiny_model')


def test_prefix_trained_checkpoint_exports_per_action_tau_and_matches_torch(
        tmp_path, reference_model_dir):
    """Trained with committed prefixes: tau is per action, and the runtime feeds the prefix as
    torch's sampler does (clean, tau = 1), not by inpainting."""
    model, stats, rt = _tiny_export(tmp_path, reference_model_dir,
                                    {'train': {'committed_prefix_fraction': 0.8}})
    tau = next(t for t in rt.manifest.stages['action_expert'].inputs if t.name == 'tau')
    assert list(tau.shape) == ['batch', 50] and rt.prefix_mode == 'clean'
    obs = TeaTableEnv().reset(1_000_011)
    noise = np.random.default_rng(1).standard_normal((50, 3)).astype(np.float32)
    committed = np.random.default_rng(2).uniform(-0.5, 0.5, (12, 3)).astype(np.float32)
    onnx_chunk = rt.plan_chunk(rt.encode_image(obs.image), obs.instruction, obs.state,
                               noise=noise, prefix=committed).actions
    torch_chunk = _torch_chunk(model, stats, rt, obs, noise, committed)
    assert np.array_equal(onnx_chunk[:12], committed)
    assert np.abs(onnx_chunk - torch_chunk).max() <= 1e-4
    free = rt.plan_chunk(rt.encode_image(obs.image), obs.instruction, obs.state,
                         noise=noise).actions
    assert np.abs(free - _torch_chunk(model, stats, rt, obs, noise)).max() <= 1e-4
    assert np.abs(free[12:] - onnx_chunk[12:]).max() > 1e-3   # the prefix is conditioned on


def test_a_prefix_longer_than_trained_is_kept_and_said_once(tmp_path, reference_model_dir,
                                                            caplog):
    _, _, rt = _tiny_export(tmp_path, reference_model_dir, {
        'train': {'committed_prefix_fraction': 0.8, 'max_committed_actions': 6}})
    assert rt.trained_prefix_max == 6
    obs = TeaTableEnv().reset(1_000_012)
    view = rt.encode_image(obs.image)
    with caplog.at_level('INFO', logger='vla_edge.runtime'):
        for d in (6, 9, 9):
            committed = np.full((d, 3), 0.1, np.float32)
            chunk = rt.plan_chunk(view, obs.instruction, obs.state, seed=0, prefix=committed)
            assert np.array_equal(chunk.actions[:d], committed)
    notes = [r.getMessage() for r in caplog.records if 'longer than the 6' in r.getMessage()]
    assert len(notes) == 1


def test_checkpoint_without_prefix_training_keeps_a_chunk_wide_tau(tmp_path, reference_model_dir):
    _, _, rt = _tiny_export(tmp_path, reference_model_dir,
                            {'train': {'committed_prefix_fraction': 0.0}})
    tau = next(t for t in rt.manifest.stages['action_expert'].inputs if t.name == 'tau')
    assert list(tau.shape) == ['batch'] and rt.prefix_mode == 'inpaint'


def test_checkpoint_loads_without_pickle_code(tmp_path):
    """Checkpoints hold tensors, lists and numbers only (weights_only=True loads them)."""
    model = ReferencePolicy(PolicyConfig(backbone_layers=1, expert_layers=1))
    save_checkpoint(tmp_path / 'c.pt', model, {'a': [1.0]}, {'b': 2})
    loaded, stats, meta = load_checkpoint(tmp_path / 'c.pt')
    assert stats == {'a': [1.0]} and meta == {'b': 2}
    assert loaded.cfg == model.cfg


def test_a_missing_or_foreign_checkpoint_names_the_file(tmp_path):
    from vla_edge.core.errors import VlaEdgeError

    with pytest.raises(VlaEdgeError, match=f'checkpoint {tmp_path / "none.pt"} not found'):
        load_checkpoint(tmp_path / 'none.pt')
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint\n')
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    for path, detail in ((text, 'torch.load'), (tmp_path / 'other.pt', 'no state_dict'),
                         (tmp_path, 'is not a file')):
        with pytest.raises(VlaEdgeError, match=detail) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value) and '\n' not in str(err.value)


@pytest.mark.parametrize('kwargs, message', [
    ({'denoising_steps': 0}, 'denoising_steps must be an integer >= 1, got 0'),
    ({'control_rate_hz': -3.0}, 'control_rate_hz must be a finite number > 0, got -3.0'),
    ({'control_rate_hz': float('inf')}, 'control_rate_hz must be a finite number > 0'),
])
def test_export_refuses_values_the_manifest_would_refuse(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_policy(CHECKPOINT, tmp_path / 'm', **kwargs)
    assert not (tmp_path / 'm').exists()
