"""The onboard policy runtime: a model folder on ONNX Runtime, one session per stage. No torch.

Three calls, matching how the robot uses them at different rates:
- `encode_image` every camera frame (vision encoder),
- `encode_instruction` once per new instruction (cached),
- `plan_chunk` a few times per second (backbone once, then the action expert N times), optionally
  keeping a committed prefix of actions fixed so that consecutive chunks join without a jump
  (as the model was trained to, when its `tau` input is per action; else by inpainting).
Per-stage wall times of the latest calls are kept in `last_latency_s` for the caller to track.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla_edge.core.action_range import ActionRange
from vla_edge.core.errors import InputError, ModelLoadError, ModelOutputError
from vla_edge.core.flow_sampler import denoise
from vla_edge.core.image_input import prepare_image
from vla_edge.core.instruction_encoder import InstructionEncoder
from vla_edge.core.manifest import Manifest, load_manifest
from vla_edge.core.onnx_session import SessionOptions, open_stage

log = logging.getLogger('vla_edge.runtime')


@dataclass
class VisualEmbedding:
    """The vision stage's output for one frame, with the time the frame was taken."""

    tokens: np.ndarray   # (1, T, D) float32
    stamp_s: float
    encode_s: float = 0.0   # wall time of the vision stage for this frame


@dataclass
class PlannedChunk:
    """An action chunk in the robot's action units, (H, action_dim)."""

    actions: np.ndarray
    observation_stamp_s: float
    stage_latency_s: dict[str, float] = field(default_factory=dict)


# The tensors this runtime feeds each stage, by name: the model contract (README "The reference
# policy and the model folder"). A folder whose manifest and ONNX files agree with each other on
# other names is refused at load, not at its first frame.
FED_INPUTS = {'instruction_encoder': ('input_ids', 'attention_mask'),
              'vision_encoder': ('image',),
              'backbone': ('visual_tokens', 'instruction_embedding', 'state'),
              'action_expert': ('prefix_kv', 'noisy_actions', 'tau')}


def check_fed_inputs(stage: str, inputs: list[str]) -> None:
    want = FED_INPUTS[stage]
    if sorted(inputs) != sorted(want):
        raise ModelLoadError(f'stage {stage}: inputs {sorted(inputs)}, but this runtime feeds '
                             f'{sorted(want)} (the model contract)')


def prefix_mode(manifest: Manifest) -> str:
    """How this model is shown a committed prefix, read off its `tau` input: a flow time per
    action, (batch, H), means it was trained with committed prefixes fed clean at tau = 1
    ('clean'); a chunk-wide (batch,) tau means it was not, and the prefix is inpainted."""
    tau = next(t for t in manifest.stages['action_expert'].inputs if t.name == 'tau')
    if len(tau.shape) == 1:
        return 'inpaint'
    if len(tau.shape) == 2 and tau.shape[1] == manifest.chunk_length:
        return 'clean'
    raise ModelLoadError(f'stage action_expert: tau must be [batch] (one flow time per chunk) or '
                         f'[batch, {manifest.chunk_length}] (one per action), got '
                         f'{list(tau.shape)}')


class PolicyRuntime:
    """One ONNX Runtime session per stage of a checked model folder."""

    def __init__(self, model_dir: str | Path, options: SessionOptions | None = None,
                 denoising_steps: int | None = None):
        self.options = options or SessionOptions()
        self.manifest: Manifest = load_manifest(model_dir)
        m = self.manifest
        self.sessions = {name: open_stage(spec, self.options) for name, spec in m.stages.items()}
        for name, session in self.sessions.items():
            check_fed_inputs(name, [i.name for i in session.get_inputs()])
        self.prefix_mode = prefix_mode(m)
        # Longest committed prefix a 'clean' model saw in training (None: not recorded).
        trained = ((m.raw.get('training') or {}).get('train') or {}).get('max_committed_actions')
        self.trained_prefix_max = int(trained) if isinstance(trained, int) else None
        self.instruction_encoder = InstructionEncoder(m.stages['instruction_encoder'],
                                                      self.sessions['instruction_encoder'])
        self.denoising_steps = int(denoising_steps or m.denoising_steps)
        if self.denoising_steps < 1:
            raise ValueError(f'denoising_steps must be >= 1, got {self.denoising_steps}')
        norm = m.normalization
        self._state_mean = np.asarray(norm['state_mean'], np.float32)
        self._state_std = np.asarray(norm['state_std'], np.float32)
        self._action_mean = np.asarray(norm['action_mean'], np.float32)
        self._action_std = np.asarray(norm['action_std'], np.float32)
        self._notes_said: set[str] = set()
        self.action_range = ActionRange.of_model(m)
        # Unseeded noise comes from one generator: a new default_rng(None) per chunk reads OS
        # entropy, ~0.1 ms on the planning path right after the ONNX runs (docs/measurements.md,
        # "ROS 2 pipeline benchmarks"). numpy's Generator locks itself, so threads may share
        # the runtime.
        self._unseeded_rng = np.random.default_rng()
        self.last_latency_s: dict[str, float] = {}
        log.info('loaded model %r from %s (providers %s, %d denoising steps)', m.name, m.folder,
                 self.sessions['backbone'].get_providers(), self.denoising_steps)

    # -- stages ---------------------------------------------------------------------------------
    def encode_image(self, image: np.ndarray, stamp_s: float = 0.0) -> VisualEmbedding:
        h, w = self.manifest.image_hw
        frame = prepare_image(image, h, w, note=self._note_once)
        t0 = time.perf_counter()
        tokens = self.sessions['vision_encoder'].run(None, {'image': frame[None]})[0]
        elapsed = time.perf_counter() - t0
        self.last_latency_s['vision_encoder'] = elapsed
        return VisualEmbedding(tokens=tokens, stamp_s=stamp_s, encode_s=elapsed)

    def encode_instruction(self, text: str) -> np.ndarray:
        t0 = time.perf_counter()
        embedding = self.instruction_encoder(text)
        self.last_latency_s['instruction_encoder'] = time.perf_counter() - t0
        return embedding

    def plan_chunk(self, visual: VisualEmbedding, instruction: str | np.ndarray,
                   state: np.ndarray, seed: int | None = None, noise: np.ndarray | None = None,
                   prefix: np.ndarray | None = None) -> PlannedChunk:
        """Denoise one action chunk from the current visual embedding, instruction and state.

        `noise` (H, A) makes the result reproducible (else drawn from `seed`). `prefix` (d, A), in
        action units, is a committed start of the chunk that the result keeps exactly.
        """
        m = self.manifest
        h, a = m.chunk_length, m.action_dim
        embedding = (self.encode_instruction(instruction) if isinstance(instruction, str)
                     else np.asarray(instruction, np.float32).reshape(-1))
        state_n = self._normalize_state(state)
        if noise is None:
            rng = self._unseeded_rng if seed is None else np.random.default_rng(seed)
            noise = rng.standard_normal((h, a)).astype(np.float32)
        noise = np.asarray(noise, np.float32)
        if noise.shape != (h, a):
            raise InputError(f'noise must have shape ({h}, {a}), got {noise.shape}')
        prefix_n = None if prefix is None else self.normalize_prefix(prefix)
        if prefix_n is not None and self.prefix_mode == 'clean' and self.trained_prefix_max \
                and len(prefix_n) > self.trained_prefix_max:
            self._note_once(f'committed prefixes longer than the {self.trained_prefix_max} '
                            'actions this model was trained with are kept whole, untrained '
                            '(inference latency above what training assumed)')

        t0 = time.perf_counter()
        prefix_kv = self.sessions['backbone'].run(None, {
            'visual_tokens': visual.tokens.astype(np.float32, copy=False),
            'instruction_embedding': embedding[None],
            'state': state_n[None]})[0]
        t1 = time.perf_counter()
        expert = self.sessions['action_expert']
        per_action = self.prefix_mode == 'clean'

        def velocity(x: np.ndarray, tau: np.ndarray) -> np.ndarray:
            # A chunk-wide tau is the step's time: that of the last action, never committed.
            return expert.run(None, {'prefix_kv': prefix_kv, 'noisy_actions': x,
                                     'tau': tau if per_action else tau[:, -1]})[0]

        chunk_n = denoise(velocity, noise[None], self.denoising_steps, prefix_n,
                          self.prefix_mode)[0]
        t2 = time.perf_counter()
        self.last_latency_s.update(backbone=t1 - t0, action_expert=t2 - t1)
        actions = chunk_n * self._action_std + self._action_mean
        if prefix is not None:   # exact, not merely up to float rounding of (de)normalization
            actions[:len(prefix)] = prefix
        problem = self.action_range.problem(actions)
        if problem is not None:   # a broken model: nothing it said this time is usable
            raise ModelOutputError(f'the model\'s chunk refused: {problem}')
        return PlannedChunk(actions=actions, observation_stamp_s=visual.stamp_s,
                            stage_latency_s=dict(self.last_latency_s))

    # -- helpers --------------------------------------------------------------------------------
    def _normalize_state(self, state: np.ndarray) -> np.ndarray:
        s = np.asarray(state, dtype=np.float32).reshape(-1)
        if s.shape != (self.manifest.state_dim,):
            raise InputError(f'state must have {self.manifest.state_dim} values '
                             f'{self.manifest.raw.get("state_names", "")}, got {s.shape[0]}')
        if not np.all(np.isfinite(s)):
            raise InputError(f'state contains NaN or inf: {s.tolist()}')
        return (s - self._state_mean) / self._state_std

    def normalize_prefix(self, prefix: np.ndarray) -> np.ndarray:
        """A committed prefix in the model's normalised action space; InputError for one that
        cannot be this model's actions (core/action_range.py): the expert keeps the prefix as
        given, so a value of 1e30 would come back in the chunk."""
        m = self.manifest
        raw = np.asarray(prefix, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != m.action_dim or not 0 < raw.shape[0] < m.chunk_length:
            raise InputError(f'prefix must be (d, {m.action_dim}) with 0 < d < {m.chunk_length}, '
                             f'got {raw.shape}')
        problem = self.action_range.problem(raw)
        if problem is not None:
            raise InputError(f'prefix refused: {problem}')
        p = raw.astype(np.float32)   # normalised in float32, as the model was fed before
        return (p - self._action_mean) / self._action_std

    def _note_once(self, message: str) -> None:
        if message not in self._notes_said:
            self._notes_said.add(message)
            log.info('%s (said once)', message)
