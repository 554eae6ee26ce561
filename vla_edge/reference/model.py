"""The reference VLA policy in torch: vision encoder, transformer backbone, flow-matching expert.

Shaped like a small real VLA (pi0-style) so that latency and quantization questions are real:
- the vision encoder turns an RGB uint8 frame into a grid of visual tokens;
- the backbone is a transformer over [instruction, state, visual tokens]; like pi0 it hands the
  action expert a prefix key/value cache (one K and V per expert layer), computed once per chunk;
- the action expert is a transformer over the H action tokens that cross-attends to that cache and
  predicts the flow-matching velocity; it runs N times per chunk.

Attention is written with plain matmuls (no fused kernels) so that the ONNX export is plain MatMul /
Softmax nodes that ONNX Runtime's quantization tools understand.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


@dataclass(frozen=True)
class PolicyConfig:
    """Sizes of the three stages. Defaults are what the shipped reference model was trained with."""

    image_size: int = 128
    state_dim: int = 5
    action_dim: int = 3
    instruction_dim: int = 384     # all-MiniLM-L6-v2 sentence embedding
    chunk_length: int = 50         # H
    width: int = 128               # D, shared by backbone and expert
    heads: int = 4
    backbone_layers: int = 4
    expert_layers: int = 3
    expert_width: int = 128
    mlp_ratio: int = 4
    patch: int = 4                 # first conv stride: 128 px -> 32x32 -> 16x16 -> 8x8 tokens
    keypoints: int = 16            # spatial-softmax keypoint tokens beside the grid tokens

    @property
    def grid(self) -> int:
        return self.image_size // (self.patch * 4)

    @property
    def visual_tokens(self) -> int:
        return self.grid * self.grid + self.keypoints

    @property
    def context_tokens(self) -> int:
        return 2 + self.visual_tokens

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections (keys/values may be supplied)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: (B, T, D) projected; k, v: (B, S, D) projected."""
        qh, kh, vh = self.split(q), self.split(k), self.split(v)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(qh.shape[-1])
        y = torch.softmax(scores, dim=-1) @ vh
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(self.q(x), self.k(x), self.v(x))


class Mlp(nn.Sequential):
    """Two-layer GELU feed-forward block."""

    def __init__(self, width: int, ratio: int):
        super().__init__(nn.Linear(width, width * ratio), nn.GELU(),
                         nn.Linear(width * ratio, width))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: self-attention then MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.mlp = Mlp(width, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionEncoder(nn.Module):
    """RGB uint8 (B, H, W, 3) -> visual tokens (B, grid*grid + keypoints, D).

    Pixel scaling happens inside the graph, so the robot feeds camera bytes as they come. Positions
    are what this task needs, so they are made easy to read off: two coordinate channels
    (CoordConv) at the input, and spatial-softmax keypoints (the expected image position of each of
    K learned feature maps, as in robomimic / Diffusion Policy encoders) as extra tokens.
    """

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        c = cfg.width
        self.cfg = cfg
        self.stem = nn.Conv2d(5, c // 4, kernel_size=cfg.patch, stride=cfg.patch)
        self.conv2 = nn.Conv2d(c // 4, c // 2, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c // 2, c, kernel_size=3, stride=2, padding=1)
        self.proj = nn.Conv2d(c, c, kernel_size=1)
        self.pos = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid, c))
        self.keypoint_maps = nn.Conv2d(c // 2, cfg.keypoints, kernel_size=1)
        self.keypoint_log_temp = nn.Parameter(torch.zeros(()))
        self.keypoint_proj = nn.Sequential(nn.Linear(2, c), nn.GELU(), nn.Linear(c, c))
        self.keypoint_emb = nn.Parameter(torch.zeros(1, cfg.keypoints, c))
        self.norm = nn.LayerNorm(c)
        n = cfg.image_size
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing='ij')
        self.register_buffer('coords', torch.stack([xs, ys])[None], persistent=False)
        m = n // (cfg.patch * 2)   # resolution of the keypoint maps (conv2 output)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, m), torch.linspace(-1, 1, m), indexing='ij')
        self.register_buffer('keypoint_grid', torch.stack([xs.flatten(), ys.flatten()], -1),
                             persistent=False)

    def spatial_softmax(self, features: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) feature maps -> (B, K, 2) expected x, y in [-1, 1]."""
        maps = self.keypoint_maps(features).flatten(2) * torch.exp(self.keypoint_log_temp)
        return torch.softmax(maps, dim=-1) @ self.keypoint_grid

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode(image)[0]

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(visual tokens, keypoint positions (B, K, 2)); training supervises the keypoints."""
        x = image.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0) - 0.5
        x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        x = F.gelu(self.stem(x))
        mid = F.gelu(self.conv2(x))
        x = F.gelu(self.conv3(mid))
        grid = self.proj(x).flatten(2).transpose(1, 2) + self.pos
        xy = self.spatial_softmax(mid)
        keypoints = self.keypoint_proj(xy) + self.keypoint_emb
        return self.norm(torch.cat([grid, keypoints], dim=1)), xy


class Backbone(nn.Module):
    """[instruction, state, visual tokens] -> prefix K/V cache for each expert layer.

    Output `prefix_kv`: (expert_layers, 2, B, T, expert_width). Also returns the context tokens,
    used in training by an auxiliary head.
    """

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        d = cfg.width
        self.instruction_proj = nn.Sequential(nn.Linear(cfg.instruction_dim, d), nn.GELU(),
                                              nn.Linear(d, d))
        self.state_proj = nn.Sequential(nn.Linear(cfg.state_dim, d), nn.GELU(), nn.Linear(d, d))
        self.type_emb = nn.Parameter(torch.zeros(1, 3, d))
        self.blocks = nn.ModuleList(EncoderBlock(d, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.backbone_layers))
        self.norm = nn.LayerNorm(d)
        self.kv = nn.ModuleList(nn.Linear(d, 2 * cfg.expert_width)
                                for _ in range(cfg.expert_layers))

    def forward(self, visual_tokens: torch.Tensor, instruction: torch.Tensor, state: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        i = self.instruction_proj(instruction)[:, None] + self.type_emb[:, 0:1]
        s = self.state_proj(state)[:, None] + self.type_emb[:, 1:2]
        x = torch.cat([i, s, visual_tokens + self.type_emb[:, 2:3]], dim=1)
        for block in self.blocks:
            x = block(x)
        context = self.norm(x)
        kv = torch.stack([torch.stack(layer(context).chunk(2, dim=-1)) for layer in self.kv])
        return kv, context


class ExpertBlock(nn.Module):
    """Pre-norm block: self-attention over actions, cross-attention to the prefix, MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(width) for _ in range(3))
        self.self_attn = Attention(width, heads)
        self.cross_q = nn.Linear(width, width)
        self.cross = Attention(width, heads)
        self.mlp = Mlp(width, mlp_ratio)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross.attend(self.cross_q(self.norm2(x)), k, v)
        return x + self.mlp(self.norm3(x))


def timestep_embedding(tau: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the flow time tau in [0, 1], shape (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(1000.0) / half))
    angles = tau[:, None] * 1000.0 * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class ActionExpert(nn.Module):
    """(prefix K/V, noisy chunk x_tau, tau) -> flow velocity dx/dtau, all (B, H, action_dim).

    `tau` is the flow time of the whole chunk (B,) or of each action (B, H). Per-action time is
    how a committed prefix is conditioned on (training-time real-time chunking): its actions are
    fed clean, at tau = 1, while the rest of the chunk is denoised around them. A (B,) tau is the
    same as every action at that time.
    """

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        d = cfg.expert_width
        self.cfg = cfg
        self.action_in = nn.Linear(cfg.action_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.pos = nn.Parameter(torch.zeros(1, cfg.chunk_length, d))
        self.blocks = nn.ModuleList(ExpertBlock(d, cfg.heads, cfg.mlp_ratio // 2)
                                    for _ in range(cfg.expert_layers))
        self.norm = nn.LayerNorm(d)
        self.action_out = nn.Linear(d, cfg.action_dim)

    def forward(self, prefix_kv: torch.Tensor, noisy_actions: torch.Tensor, tau: torch.Tensor
                ) -> torch.Tensor:
        b, h, _ = noisy_actions.shape
        d = self.cfg.expert_width
        per_action = tau.reshape(b, -1).expand(b, h).reshape(-1)
        t = self.time_mlp(timestep_embedding(per_action, d)).reshape(b, h, d)
        x = self.action_in(noisy_actions) + self.pos + t
        for layer, block in enumerate(self.blocks):
            x = block(x, prefix_kv[layer, 0], prefix_kv[layer, 1])
        return self.action_out(self.norm(x))


class ReferencePolicy(nn.Module):
    """The three stages together, plus training-only auxiliary supervision.

    Both auxiliary losses use privileged sim information and are not exported: the first keypoints
    of the vision encoder are pulled onto the objects (one keypoint per object type), and a head
    on the instruction token predicts where the named object and container are. They make
    localisation and "which object do the words mean" learnable within a CPU budget.
    """

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.backbone = Backbone(cfg)
        self.expert = ActionExpert(cfg)
        self.aux_head = nn.Linear(cfg.width, 4)

    def prefix(self, image: torch.Tensor, instruction: torch.Tensor, state: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(self.vision(image), instruction, state)

    def prefix_with_keypoints(self, image: torch.Tensor, instruction: torch.Tensor,
                              state: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training: (prefix K/V, context tokens, keypoint positions)."""
        tokens, xy = self.vision.encode(image)
        kv, context = self.backbone(tokens, instruction, state)
        return kv, context, xy

    @torch.no_grad()
    def sample(self, image: torch.Tensor, instruction: torch.Tensor, state: torch.Tensor,
               noise: torch.Tensor, steps: int, committed: torch.Tensor | None = None
               ) -> torch.Tensor:
        """Euler-integrate the flow from noise (tau=0) to a normalized action chunk (tau=1).

        `committed` (B, d, A), normalized: actions the chunk starts with, fed clean at tau = 1
        at every step, as a model trained with committed prefixes saw them."""
        kv, _ = self.prefix(image, instruction, state)
        x = noise.clone()
        d = 0 if committed is None else committed.shape[1]
        for i in range(steps):
            tau = torch.full(x.shape[:2], i / steps)
            if d:
                x[:, :d] = committed
                tau[:, :d] = 1.0
            x = x + self.expert(kv, x, tau) / steps
        if d:
            x[:, :d] = committed
        return x
