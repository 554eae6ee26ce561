"""Per-stage ONNX Runtime latency of the reference model on this machine.

    .venv/bin/python benchmarks/stage_latency.py [--model DIR] [--repeats 200] [--threads 1]

Prints one line per stage (median and p95) and, as the last line, the whole policy step
(vision encoder + backbone + all denoising steps of the action expert).
"""
import argparse
import json
import sys

from vla_edge.core.model_dir import default_model_dir
from vla_edge.core.onnx_session import SessionOptions
from vla_edge.tools.stage_bench import bench_stages, describe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', default=str(default_model_dir()))
    p.add_argument('--repeats', type=int, default=200)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', default=None)
    args = p.parse_args()
    result = bench_stages(args.model, args.repeats, options=SessionOptions(
        intra_op_threads=args.threads))
    print(describe(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    step = result['stages']['policy_step']
    print(f'policy step: median {step["median_ms"]:.2f} ms, p95 {step["p95_ms"]:.2f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
