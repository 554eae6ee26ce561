"""Behaviour cloning of the reference policy with a flow-matching loss, CPU only, seeded.

Flow convention used everywhere in this package: x_tau = (1 - tau) * noise + tau * actions, with tau
from 0 (pure noise) to 1 (data); the expert predicts the velocity (actions - noise).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vla_edge.core.errors import VlaEdgeError
from vla_edge.reference.dataset import Demonstrations, collect_demonstrations
from vla_edge.reference.model import PolicyConfig, ReferencePolicy
from vla_edge.reference.text_embedding import SentenceTransformerEmbedder
from vla_edge.sim.tasks import all_tasks, train_instructions

INSTRUCTION_NOISE_STD = 0.015   # per-dimension noise on the unit embedding: paraphrase robustness


@dataclass
class TrainConfig:
    """Defaults are exactly what produced the shipped reference model."""

    episodes: int = 1000
    first_seed: int = 0
    stride: int = 2
    steps: int = 4500
    batch_size: int = 64
    flow_samples: int = 2          # flow times drawn per observation (the expert is cheap)
    lr: float = 8e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    aux_weight: float = 0.5
    keypoint_weight: float = 1.0
    # The named object's position is trivial once it is held (it is at the gripper); before the
    # grasp it needs the words. This factor up-weights those pre-grasp samples in the aux loss.
    pregrasp_aux_boost: float = 1.0
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 500
    init_from: str | None = None   # continue from this checkpoint's weights (fine-tuning)
    # Training-time real-time chunking: in this fraction of flow samples the first d actions
    # (d uniform in 1..max_committed_actions) are given clean at tau = 1, as the executor's
    # committed prefix is at inference, and the loss is taken on the rest. The model learns to
    # continue what the robot will do while it thinks. 0 disables it (and the export then keeps
    # the chunk-wide tau input); off by default: measured, it did not beat the blend merge
    # (docs/measurements.md, "Training-time real-time chunking").
    committed_prefix_fraction: float = 0.0
    max_committed_actions: int = 25
    policy: PolicyConfig = field(default_factory=PolicyConfig)


def normalization_stats(demos: Demonstrations) -> dict[str, list[float]]:
    flat = demos.chunks.reshape(-1, demos.chunks.shape[-1])
    return {
        'state_mean': demos.states.mean(0).tolist(),
        'state_std': np.maximum(demos.states.std(0), 1e-3).tolist(),
        'action_mean': flat.mean(0).tolist(),
        'action_std': np.maximum(flat.std(0), 1e-3).tolist(),
    }


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def flow_times(n: int, horizon: int, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-action flow times (n, H) and the mask of actions the loss is taken on.

    Each sample has one flow time; in a `committed_prefix_fraction` of them its first d actions
    are committed instead (tau = 1: fed clean, as at inference) and left out of the loss."""
    tau = torch.rand(n)[:, None].expand(n, horizon)
    if cfg.committed_prefix_fraction == 0:   # no extra draws: the random stream stays as it was
        return tau, torch.ones(n, horizon)
    committed = torch.randint(1, cfg.max_committed_actions + 1, (n,))
    committed = torch.where(torch.rand(n) < cfg.committed_prefix_fraction, committed, 0)
    in_prefix = torch.arange(horizon)[None] < committed[:, None]
    return torch.where(in_prefix, 1.0, tau), (~in_prefix).float()


def save_checkpoint(path: Path, model: ReferencePolicy, stats: dict, meta: dict) -> None:
    """Plain tensors, lists and numbers only: loadable with torch.load(weights_only=True)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': model.state_dict(), 'config': model.cfg.to_dict(),
                'stats': stats, 'meta': meta}, path)


CHECKPOINT_KEYS = ('state_dict', 'config', 'stats', 'meta')


def read_checkpoint(path: Path) -> dict:
    """The contents of a `save_checkpoint` file, checked; VlaEdgeError naming the file when it
    is missing or is not one (torch's own errors name neither)."""
    path = Path(path)
    if not path.exists():
        raise VlaEdgeError(f'checkpoint {path} not found')
    if not path.is_file():
        raise VlaEdgeError(f'checkpoint {path} is not a file')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:   # pickle, zip and weights-only errors of every kind
        raise VlaEdgeError(f'{path} is not a vla_edge checkpoint (torch.load: '
                           f'{_first_line(exc)})') from exc
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise VlaEdgeError(f'{path} is not a vla_edge checkpoint (no {", ".join(missing)})')
    try:
        PolicyConfig(**ckpt['config'])
    except TypeError as exc:
        raise VlaEdgeError(f'{path} is not a vla_edge checkpoint (config: '
                           f'{_first_line(exc)})') from exc
    return ckpt


def _policy(ckpt: dict, path: Path) -> ReferencePolicy:
    model = ReferencePolicy(PolicyConfig(**ckpt['config']))
    try:
        model.load_state_dict(ckpt['state_dict'])
    except (TypeError, RuntimeError) as exc:
        raise VlaEdgeError(f'{path} is not a vla_edge checkpoint of this policy '
                           f'({_first_line(exc)})') from exc
    return model


def load_checkpoint(path: Path) -> tuple[ReferencePolicy, dict, dict]:
    """(policy in eval mode, normalization stats, meta) of a `save_checkpoint` file."""
    ckpt = read_checkpoint(path)
    model = _policy(ckpt, Path(path))
    model.eval()
    return model, ckpt['stats'], ckpt['meta']


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0]}' if text else type(exc).__name__


def train(cfg: TrainConfig, out_dir: Path) -> Path:
    """Collect demonstrations, train, and write `out_dir/policy.pt`. Returns its path."""
    for name in ('episodes', 'steps', 'batch_size'):
        if getattr(cfg, name) < 1:
            raise ValueError(f'{name} must be >= 1, got {getattr(cfg, name)}')
    if not 0.0 <= cfg.committed_prefix_fraction <= 1.0:
        raise ValueError(f'committed_prefix_fraction must be in [0, 1], '
                         f'got {cfg.committed_prefix_fraction}')
    if not 1 <= cfg.max_committed_actions < cfg.policy.chunk_length:
        raise ValueError(f'max_committed_actions must be in [1, {cfg.policy.chunk_length - 1}], '
                         f'got {cfg.max_committed_actions}')
    # The checkpoint to start from is checked first: collecting demonstrations takes minutes.
    init = None
    if cfg.init_from:
        init = read_checkpoint(Path(cfg.init_from))
        if PolicyConfig(**init['config']) != cfg.policy:
            raise ValueError(f'{cfg.init_from} has a different architecture: '
                             f'{PolicyConfig(**init["config"])}')
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    demos = collect_demonstrations(cfg.episodes, cfg.first_seed, cfg.stride,
                                   cfg.policy.chunk_length)
    stats = normalization_stats(demos)
    embedder = SentenceTransformerEmbedder()
    task_embeddings = [embedder.encode(train_instructions(t)) for t in all_tasks()]

    state_mean, state_std = (np.array(stats[k], np.float32) for k in ('state_mean', 'state_std'))
    act_mean, act_std = (np.array(stats[k], np.float32) for k in ('action_mean', 'action_std'))
    states = (demos.states - state_mean) / state_std
    chunks = (demos.chunks - act_mean) / act_std
    targets = demos.targets * 2.0 - 1.0
    held = np.linalg.norm(demos.targets[:, :2] - demos.states[:, :2], axis=1) < 1e-6
    aux_row_weight = np.where(held, 1.0, cfg.pregrasp_aux_boost).astype(np.float32)
    aux_row_weight /= aux_row_weight.mean()
    object_xy = demos.object_xy * 2.0 - 1.0
    n_supervised = object_xy.shape[1]
    if cfg.policy.keypoints < n_supervised:
        raise ValueError(f'need at least {n_supervised} keypoints, have {cfg.policy.keypoints}')

    model = ReferencePolicy(cfg.policy)
    init_meta = None
    if init is not None:
        model.load_state_dict(_policy(init, Path(cfg.init_from)).state_dict())
        init_meta = init['meta']
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    meta = {'train': {k: v for k, v in cfg.__dict__.items() if k != 'policy'},
            'training_seed_range': [cfg.first_seed, cfg.first_seed + cfg.episodes],
            'samples': len(demos), 'initialized_from': init_meta}
    out_dir.mkdir(parents=True, exist_ok=True)
    log = (out_dir / 'train_log.jsonl').open('w')
    k = cfg.flow_samples
    started = time.time()
    bar = tqdm(range(cfg.steps), desc='training', unit='step')
    for step in bar:
        idx = rng.integers(len(demos), size=cfg.batch_size)
        emb = np.stack([task_embeddings[t][rng.integers(len(task_embeddings[t]))]
                        for t in demos.task_ids[idx]])
        emb = emb + rng.normal(0, INSTRUCTION_NOISE_STD, size=emb.shape)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        image = torch.from_numpy(demos.images[idx])
        kv, context, xy = model.prefix_with_keypoints(
            image, torch.from_numpy(emb.astype(np.float32)), torch.from_numpy(states[idx]))
        present = torch.from_numpy(demos.object_present[idx]).float()
        kp_err = ((xy[:, :n_supervised] - torch.from_numpy(object_xy[idx])) ** 2).sum(-1)
        keypoint_loss = (kp_err * present).sum() / present.sum()
        actions = torch.from_numpy(chunks[idx]).repeat(k, 1, 1)
        noise = torch.randn_like(actions)
        tau, free = flow_times(actions.shape[0], actions.shape[1], cfg)
        x_tau = (1 - tau[..., None]) * noise + tau[..., None] * actions
        err = ((model.expert(kv.repeat(1, 1, k, 1, 1), x_tau, tau) - (actions - noise)) ** 2)
        flow_loss = (err.mean(-1) * free).sum() / free.sum()
        aux_err = (model.aux_head(context[:, 0]) - torch.from_numpy(targets[idx])) ** 2
        aux_loss = torch.mean(aux_err.mean(1) * torch.from_numpy(aux_row_weight[idx]))
        loss = flow_loss + cfg.aux_weight * aux_loss + cfg.keypoint_weight * keypoint_loss
        for group in opt.param_groups:
            group['lr'] = _lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            bar.set_postfix(flow=f'{flow_loss.item():.4f}', aux=f'{aux_loss.item():.4f}',
                            kp=f'{keypoint_loss.item():.4f}')
            log.write(json.dumps({'step': step, 'flow_loss': flow_loss.item(),
                                  'aux_loss': aux_loss.item(),
                                  'keypoint_loss': keypoint_loss.item(), 'lr': _lr_at(step, cfg),
                                  'elapsed_s': time.time() - started}) + '\n')
            log.flush()
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            model.eval()
            save_checkpoint(out_dir / 'policy.pt', model, stats, {**meta, 'steps_done': step + 1})
            model.train()
    log.close()
    return out_dir / 'policy.pt'
