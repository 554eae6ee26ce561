"""Cross-space compensation at the backbone -> action-expert interface (DA-PTQ's first part).

A quantized backbone shifts and rescales the statistics of `prefix_kv`, the keys and values the
expert's cross-attention reads at every denoising step. A per-channel affine map
`x_fp ~ g * x_q + d` (g = sigma_FP / sigma_Q clipped, d = mu_FP - g * mu_Q), fitted on calibration
data, undoes most of that, and it can be folded into the expert's weights so it costs nothing:

- keys: q . (g*k + d) = (g*q) . k + q . d; the second term is the same for every key of a query,
  and softmax ignores it. So g folds into the columns (and bias) of the cross-attention query
  projection; d needs nothing.
- values: attention rows sum to 1, so attn @ (g*v + d) = g * (attn @ v) + d, which folds into the
  output projection: rows of W_o scaled by g, bias b_o + d @ W_o.

Both are exact for this expert (pure cross-attention over the prefix, no mask). Where the graph does
not match the pattern, `insert_affine` puts an explicit Mul/Add on the input instead (and says so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from vla_edge.core.errors import VlaEdgeError

INTERFACE = 'prefix_kv'   # (layers, 2 = key/value, batch, tokens, width)


@dataclass
class AffineCorrection:
    """Per-channel scale/shift with shape (layers, 2, width)."""

    scale: np.ndarray
    shift: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale[:, :, None, None, :] + self.shift[:, :, None, None, :]

    def to_dict(self) -> dict:
        return {'scale_min': float(self.scale.min()), 'scale_max': float(self.scale.max()),
                'scale_mean': float(self.scale.mean()),
                'shift_abs_mean': float(np.abs(self.shift).mean())}


def fit_affine(reference: np.ndarray, quantized: np.ndarray,
               clip: tuple[float, float] = (0.5, 2.0), eps: float = 1e-8) -> AffineCorrection:
    """Fit g, d per (layer, k/v, channel) over batch and tokens: g*x_q + d matches x_fp."""
    if reference.shape != quantized.shape or reference.ndim != 5:
        raise ValueError(f'need two (L, 2, B, T, C) arrays of one shape, got {reference.shape} '
                         f'and {quantized.shape}')
    axes = (2, 3)
    mu_fp, mu_q = reference.mean(axes), quantized.mean(axes)
    sd_fp, sd_q = reference.std(axes), quantized.std(axes)
    scale = np.clip(sd_fp / np.maximum(sd_q, eps), *clip)
    shift = mu_fp - scale * mu_q
    return AffineCorrection(scale.astype(np.float32), shift.astype(np.float32))


def fold_into_expert(model: onnx.ModelProto, corr: AffineCorrection) -> onnx.ModelProto:
    """Return a copy of the expert with the correction folded into its weights (exact)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = _Graph(m)
    for layer in range(corr.scale.shape[0]):
        key, value = g.interface_slices(layer)
        q_w, q_b = g.query_projection_of(key)
        o_w, o_b = g.output_projection_of(value)
        gk, gv, dv = corr.scale[layer, 0], corr.scale[layer, 1], corr.shift[layer, 1]
        w_o = g.array(o_w)
        g.set(q_w, g.array(q_w) * gk[None, :])
        g.set(q_b, g.array(q_b) * gk)
        g.set(o_b, g.array(o_b) + dv @ w_o)
        g.set(o_w, w_o * gv[:, None])
    return m


def insert_affine(model: onnx.ModelProto, corr: AffineCorrection) -> onnx.ModelProto:
    """Fallback: an explicit Mul/Add on the interface input (costs one pass per expert call)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    scale = corr.scale[:, :, None, None, :].astype(np.float32)
    shift = corr.shift[:, :, None, None, :].astype(np.float32)
    m.graph.initializer.extend([numpy_helper.from_array(scale, 'compensation_scale'),
                                numpy_helper.from_array(shift, 'compensation_shift')])
    for node in m.graph.node:
        node.input[:] = [f'{INTERFACE}_compensated' if i == INTERFACE else i for i in node.input]
    nodes = [onnx.helper.make_node('Mul', [INTERFACE, 'compensation_scale'],
                                   [f'{INTERFACE}_scaled'], name='compensation/Mul'),
             onnx.helper.make_node('Add', [f'{INTERFACE}_scaled', 'compensation_shift'],
                                   [f'{INTERFACE}_compensated'], name='compensation/Add')]
    rest = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes + rest)
    return m


def compensate(model: onnx.ModelProto, corr: AffineCorrection) -> tuple[onnx.ModelProto, str]:
    """Fold if the graph has the expected attention pattern, else insert; says which it did."""
    try:
        return fold_into_expert(model, corr), 'folded into query/output projections'
    except VlaEdgeError as exc:
        return insert_affine(model, corr), f'inserted Mul/Add (could not fold: {exc})'


class _Graph:
    """Just enough graph walking to find the projections around each cross-attention."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def array(self, name: str) -> np.ndarray:
        return numpy_helper.to_array(self.inits[name])

    def set(self, name: str, value: np.ndarray) -> None:
        self.inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))

    def constant(self, name: str):
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is None or node.op_type != 'Constant':
            raise VlaEdgeError(f'{name} is not a constant')
        return numpy_helper.to_array(node.attribute[0].t)

    def _gathers(self, tensor: str) -> dict[int, str]:
        out = {}
        for n in self.consumers.get(tensor, []):
            if n.op_type == 'Gather' and _axis(n) == 0:
                idx = self.constant(n.input[1])
                if idx.ndim == 0:
                    out[int(idx)] = n.output[0]
        return out

    def interface_slices(self, layer: int) -> tuple[str, str]:
        per_layer = self._gathers(INTERFACE)
        if layer not in per_layer:
            raise VlaEdgeError(f'no Gather of {INTERFACE}[{layer}]')
        kv = self._gathers(per_layer[layer])
        if 0 not in kv or 1 not in kv:
            raise VlaEdgeError(f'no key/value Gather under {INTERFACE}[{layer}]')
        return kv[0], kv[1]

    def _follow(self, tensor: str, ops: tuple[str, ...]) -> onnx.NodeProto:
        """From `tensor`, the unique data path through `ops` (Shape branches ignored)."""
        node = None
        for op in ops:
            nxt = [n for n in self.consumers.get(tensor, []) if n.op_type == op]
            if len(nxt) != 1:
                raise VlaEdgeError(f'expected one {op} after {tensor}, found {len(nxt)}')
            node = nxt[0]
            tensor = node.output[0]
        return node

    def _linear_before(self, tensor: str) -> tuple[str, str]:
        """(weight, bias) of the MatMul+Add that produced `tensor` (through Reshape/Transpose)."""
        node = self.producer.get(tensor)
        while node is not None and node.op_type in ('Reshape', 'Transpose'):
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != 'Add':
            raise VlaEdgeError(f'no bias Add before {tensor}')
        bias = next((i for i in node.input if i in self.inits), None)
        mm = next((self.producer.get(i) for i in node.input if i not in self.inits), None)
        if bias is None or mm is None or mm.op_type != 'MatMul' or mm.input[1] not in self.inits:
            raise VlaEdgeError(f'no MatMul+bias projection before {tensor}')
        return mm.input[1], bias

    def query_projection_of(self, key: str) -> tuple[str, str]:
        scores = self._follow(key, ('Reshape', 'Transpose', 'MatMul'))
        if scores.input[1] == key:
            raise VlaEdgeError('unexpected key wiring')
        return self._linear_before(scores.input[0])

    def output_projection_of(self, value: str) -> tuple[str, str]:
        attn_v = self._follow(value, ('Reshape', 'Transpose', 'MatMul'))
        out = self._follow(attn_v.output[0], ('Transpose', 'Reshape', 'MatMul'))
        if out.input[1] not in self.inits:
            raise VlaEdgeError('output projection weight is not an initializer')
        add = [n for n in self.consumers.get(out.output[0], []) if n.op_type == 'Add']
        bias = next((i for n in add for i in n.input if i in self.inits), None)
        if len(add) != 1 or bias is None:
            raise VlaEdgeError('output projection has no bias Add')
        if self.producer.get(attn_v.input[0]) is None or \
                self.producer[attn_v.input[0]].op_type != 'Softmax':
            raise VlaEdgeError('values are not weighted by a plain softmax')
        return out.input[1], bias


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == 'axis'), 0)
