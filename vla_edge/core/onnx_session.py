"""ONNX Runtime sessions for one stage, checked against the manifest's declared inputs/outputs."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import onnxruntime as ort

from vla_edge.core.errors import ModelLoadError
from vla_edge.core.manifest import StageSpec, TensorSpec

log = logging.getLogger('vla_edge.runtime')

_ORT_DTYPES = {
    'tensor(float)': 'float32', 'tensor(float16)': 'float16', 'tensor(double)': 'float64',
    'tensor(uint8)': 'uint8', 'tensor(int8)': 'int8', 'tensor(int32)': 'int32',
    'tensor(int64)': 'int64', 'tensor(bool)': 'bool',
}


@dataclass(frozen=True)
class SessionOptions:
    """Execution providers (in preference order) and thread counts; CPU by default."""

    providers: tuple[str, ...] = ('CPUExecutionProvider',)
    intra_op_threads: int = 1
    inter_op_threads: int = 1

    def __post_init__(self) -> None:
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError('thread counts must be >= 0 (0 lets ONNX Runtime choose)')
        if not self.providers:
            raise ValueError('at least one execution provider is required')


def resolve_providers(requested: Sequence[str]) -> list[str]:
    """Keep the requested providers this onnxruntime build has; CPU is always the last resort."""
    available = ort.get_available_providers()
    chosen = [p for p in requested if p in available]
    dropped = [p for p in requested if p not in available]
    if dropped:
        log.warning('execution provider(s) %s not available in this onnxruntime build '
                    '(available: %s); using %s', dropped, available,
                    chosen or ['CPUExecutionProvider'])
    if 'CPUExecutionProvider' not in chosen:
        chosen.append('CPUExecutionProvider')
    return chosen


def open_stage(spec: StageSpec, options: SessionOptions) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(spec.path), sess_options=so,
                                       providers=resolve_providers(options.providers))
    except Exception as exc:  # onnxruntime raises several unrelated types for a bad file
        first_line = (str(exc).splitlines() or [''])[0][:200]
        raise ModelLoadError(f'stage {spec.name}: {spec.path.name} is not a loadable ONNX model '
                             f'({type(exc).__name__}: {first_line})') from exc
    _check_io(spec.name, 'input', spec.inputs, session.get_inputs())
    _check_io(spec.name, 'output', spec.outputs, session.get_outputs())
    return session


def _check_io(stage: str, kind: str, declared: Sequence[TensorSpec], actual: Sequence) -> None:
    by_name = {a.name: a for a in actual}
    want = {d.name for d in declared}
    if set(by_name) != want:
        raise ModelLoadError(
            f'stage {stage}: ONNX {kind}s {sorted(by_name)} disagree with the manifest '
            f'{sorted(want)}')
    for d in declared:
        a = by_name[d.name]
        dtype = _ORT_DTYPES.get(a.type, a.type)
        if dtype != d.dtype:
            raise ModelLoadError(f'stage {stage}: {kind} {d.name!r} is {dtype} in the ONNX file '
                                 f'but {d.dtype} in the manifest')
        if len(a.shape) != len(d.shape) or any(
                isinstance(x, int) and isinstance(y, int) and x != y
                for x, y in zip(a.shape, d.shape)):
            raise ModelLoadError(f'stage {stage}: {kind} {d.name!r} has shape {list(a.shape)} in '
                                 f'the ONNX file but {list(d.shape)} in the manifest')
