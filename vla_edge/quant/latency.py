"""Stage latency of candidates on this machine, measured beside FP32 in one interleaved loop.

Absolute times drift with whatever else the machine runs; ratios taken in the same loop do not
(much). Each repeat runs every session once, in a rotating order, on the same real feed, so a
slow patch of the machine hits all candidates alike. Medians over repeats.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from vla_edge.core.onnx_session import SessionOptions, resolve_providers
from vla_edge.quant.calibration import Feed


def open_session(path: Path, options: SessionOptions) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so,
                                providers=resolve_providers(options.providers))


def interleaved_medians_s(runners: dict[str, callable], repeats: int, warmup: int = 3,
                          desc: str = 'latency', progress: bool = True) -> dict[str, float]:
    """Median wall time of each zero-argument callable, all timed in one rotating loop."""
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in tqdm(range(warmup + repeats), desc=desc, unit='round', disable=not progress,
                  leave=False):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            runners[name]()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {n: float(np.median(v)) for n, v in times.items()}


def stage_latency_s(paths: dict[str, Path], feed: Feed, repeats: int,
                    options: SessionOptions | None = None, desc: str = 'latency',
                    progress: bool = True) -> dict[str, float]:
    """Median seconds per call of each candidate file of one stage (`paths` must include 'fp32')."""
    options = options or SessionOptions()
    sessions = {name: open_session(p, options) for name, p in paths.items()}
    runners = {}
    for name, s in sessions.items():
        names = {i.name for i in s.get_inputs()}
        f = {k: v for k, v in feed.items() if k in names}
        runners[name] = (lambda s=s, f=f: s.run(None, f))
    return interleaved_medians_s(runners, repeats, desc=desc, progress=progress)
