"""How much can quantization speed up the policy step on this CPU at all? (Amdahl per stage)

INT8/4-bit kernels only make matrix products (MatMul/Gemm/Conv and their fused forms) cheaper;
everything else in a stage (Add, Transpose, LayerNorm, Softmax, Reshape, GELU...) runs as
before. This profiles each FP32 stage with ONNX Runtime's op profiler (same provider and threads
as the pipeline), takes the share of kernel time spent in matrix products, and prints the
policy-step speedup that would follow if those products became `--matmul-speedup` times faster
(default 2, a generous INT8 figure at these sizes) and if they cost nothing at all.

    .venv/bin/python benchmarks/quantization_ceiling.py [--runs 300] [--matmul-speedup 2]

The last line is the step speedup bound with free matrix products.
"""
import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.runtime import PolicyRuntime

MATRIX_OPS = {'MatMul', 'Gemm', 'FusedMatMul', 'MatMulInteger', 'QLinearMatMul',
              'MatMulNBits', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'FusedGemm',
              'Conv', 'FusedConv', 'QLinearConv', 'ConvInteger'}


def stage_feeds(rt: PolicyRuntime) -> dict[str, dict[str, np.ndarray]]:
    """One real input per stage: a sim-sized frame, the reference instruction, a zero state."""
    rng = np.random.default_rng(0)
    h, w = rt.manifest.image_hw
    image = rng.integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    visual = rt.encode_image(image[0], 0.0)
    backbone = {'visual_tokens': visual.tokens,
                'instruction_embedding': rt.encode_instruction('put the tea bag in the mug')[None],
                'state': np.zeros((1, rt.manifest.state_dim), np.float32)}
    kv = rt.sessions['backbone'].run(None, backbone)[0]
    expert = {'prefix_kv': kv, 'tau': np.array([0.5], np.float32),
              'noisy_actions': rng.standard_normal(
                  (1, rt.manifest.chunk_length, rt.manifest.action_dim)).astype(np.float32)}
    return {'vision_encoder': {'image': image}, 'backbone': backbone, 'action_expert': expert}


def kernel_times_us(model: Path, feed: dict, runs: int, workdir: Path) -> dict[str, float]:
    """Mean kernel time per run by op type (ONNX Runtime profiler, 1 intra-op thread)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = str(workdir / model.stem)
    session = ort.InferenceSession(str(model), so, providers=['CPUExecutionProvider'])
    for _ in range(runs):
        session.run(None, feed)
    by_op: collections.Counter = collections.Counter()
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
            by_op[event['args']['op_name']] += event['dur']
    return {op: us / runs for op, us in by_op.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--runs', type=int, default=300)
    p.add_argument('--matmul-speedup', type=float, default=2.0)
    args = p.parse_args()
    rt = PolicyRuntime(default_model_dir())
    calls = {'vision_encoder': 1, 'backbone': 1, 'action_expert': rt.denoising_steps}
    fp32 = faster = free = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for stage, feed in stage_feeds(rt).items():
            times = kernel_times_us(rt.manifest.stages[stage].path, feed, args.runs, Path(tmp))
            total = sum(times.values())
            matrix = sum(us for op, us in times.items() if op in MATRIX_OPS)
            top = ', '.join(f'{op} {us / total:.0%}' for op, us in
                            sorted(times.items(), key=lambda kv: -kv[1])[:5])
            print(f'{stage:15s} x{calls[stage]:<2d} kernels {total:7.1f} us/call, matrix '
                  f'products {matrix / total:5.1%}  (top: {top})')
            fp32 += calls[stage] * total
            faster += calls[stage] * (total - matrix + matrix / args.matmul_speedup)
            free += calls[stage] * (total - matrix)
    print(f'policy step kernels: {fp32 / 1e3:.2f} ms FP32 (profiled; the profiler adds overhead)')
    print(f'step speedup if matrix products were x{args.matmul_speedup:g} faster: '
          f'x{fp32 / faster:.2f}')
    print(f'step speedup bound with free matrix products: x{fp32 / free:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
