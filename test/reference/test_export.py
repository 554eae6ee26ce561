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


def _torch_chunk(model, stats, rt, obs, noise):
    emb = rt.encode_instruction(obs.instruction)
    state = ((obs.state - np.array(stats['state_mean'], np.float32))
             / np.array(stats['state_std'], np.float32)).astype(np.float32)
    x = model.sample(torch.from_numpy(obs.image[None]), torch.from_numpy(emb[None]),
                     torch.from_numpy(state[None]), torch.from_numpy(noise[None]),
                     rt.denoising_steps)[0].numpy()
    return x * np.array(stats['action_std'], np.float32) + np.array(stats['action_mean'],
                                                                      np.float32)


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
