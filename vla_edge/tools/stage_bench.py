"""Per-stage ONNX Runtime latency of a model folder on this machine (median and p95)."""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from vla_edge.core.onnx_session import SessionOptions
from vla_edge.core.runtime import PolicyRuntime
from vla_edge.sim.env import TeaTableEnv


def bench_stages(model_dir: str, repeats: int = 200, warmup: int = 10,
                 options: SessionOptions | None = None) -> dict:
    """Time each stage and a whole policy step (vision + backbone + all denoising steps)."""
    rt = PolicyRuntime(model_dir, options)
    env = TeaTableEnv()
    obs = env.reset(1_000_000)
    times: dict[str, list[float]] = {}
    for i in tqdm(range(warmup + repeats), desc='benchmarking stages', unit='step'):
        t0 = time.perf_counter()
        visual = rt.encode_image(obs.image)
        rt.plan_chunk(visual, obs.instruction, obs.state, seed=i)
        total = time.perf_counter() - t0
        rt.instruction_encoder.cache.clear()
        t1 = time.perf_counter()
        rt.encode_instruction(obs.instruction)
        instr = time.perf_counter() - t1
        if i < warmup:
            continue
        for stage in ('vision_encoder', 'backbone', 'action_expert'):
            times.setdefault(stage, []).append(rt.last_latency_s[stage])
        times.setdefault('instruction_encoder (uncached)', []).append(instr)
        times.setdefault('policy_step', []).append(total)
    result = {stage: {'median_ms': float(np.median(v) * 1e3),
                      'p95_ms': float(np.percentile(v, 95) * 1e3)} for stage, v in times.items()}
    return {'model': rt.manifest.name, 'repeats': repeats,
            'providers': rt.sessions['backbone'].get_providers(),
            'intra_op_threads': rt.options.intra_op_threads,
            'denoising_steps': rt.denoising_steps, 'stages': result}


def describe(result: dict) -> str:
    lines = [f'model {result["model"]}: {result["repeats"]} repeats, providers '
             f'{result["providers"]}, {result["intra_op_threads"]} intra-op thread(s), '
             f'{result["denoising_steps"]} denoising steps']
    for stage, v in result['stages'].items():
        lines.append(f'  {stage:<32} median {v["median_ms"]:7.2f} ms   p95 {v["p95_ms"]:7.2f} ms')
    return '\n'.join(lines)
