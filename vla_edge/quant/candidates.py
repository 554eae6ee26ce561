"""Precision recipes for one stage, each turned into an ONNX file by onnxruntime.quantization.

A recipe is data (`Recipe`): its name is what the report, the manifest and the allocation use.
Kinds: `fp32` (the file as is), `qdq_int8` (static QDQ, S8 activations and S8 per-channel weights,
calibrated with MinMax / Percentile / Entropy on recorded feeds), `dynamic_int8` (MatMul/Gemm only),
`nbits` (weight-only MatMulNBits, 4 or 8 bit, for the transformer MatMuls) and `fp16` (float16
weights and compute, float32 inputs/outputs). `exclude` keeps named nodes in float (regexes over
node names); `keep_tail` keeps the last fraction of MatMul/Gemm nodes in float (the projection into
the next stage, the last expert blocks). `exclusion_variants` turns one stage's exclusions into
extra candidates of that stage (`vla-edge quantize --exclude/--keep-tail`), which the allocator
weighs like any other; `stage_candidates` merges them with the shared ones.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import onnx

from vla_edge.core.errors import VlaEdgeError
from vla_edge.quant.calibration import Feed, FeedReader

log = logging.getLogger('vla_edge.quant')

KINDS = ('fp32', 'qdq_int8', 'dynamic_int8', 'nbits', 'fp16')
CALIBRATION_METHODS = ('minmax', 'percentile', 'entropy')


@dataclass(frozen=True)
class Recipe:
    """How to build one candidate of a stage."""

    kind: str
    method: str = 'minmax'          # qdq_int8 only
    bits: int = 4                   # nbits only
    exclude: tuple[str, ...] = ()   # regexes over node names kept in float
    keep_tail: float = 0.0          # fraction of the last MatMul/Gemm nodes kept in float
    activation: str = 's8'          # qdq_int8: 's8' (S8S8) or 'u8' (U8S8, x86's fast path)
    op_types: tuple[str, ...] = ()  # qdq_int8: only these op types (empty: all)
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f'recipe kind must be one of {KINDS}, got {self.kind!r}')
        if self.kind == 'qdq_int8' and self.method not in CALIBRATION_METHODS:
            raise ValueError(f'calibration method must be one of {CALIBRATION_METHODS}, '
                             f'got {self.method!r}')
        if self.kind == 'nbits' and self.bits not in (4, 8):
            raise ValueError(f'MatMulNBits bits must be 4 or 8, got {self.bits}')
        if self.activation not in ('s8', 'u8'):
            raise ValueError(f'activation must be s8 or u8, got {self.activation!r}')
        if not 0.0 <= self.keep_tail < 1.0:
            raise ValueError(f'keep_tail must be in [0, 1), got {self.keep_tail}')

    @property
    def name(self) -> str:
        base = {'fp32': 'fp32', 'qdq_int8': f'int8_qdq_{self.method}',
                'dynamic_int8': 'int8_dynamic', 'nbits': f'w{self.bits}_matmulnbits',
                'fp16': 'fp16'}[self.kind]
        if self.kind == 'qdq_int8' and self.activation == 'u8':
            base += '_u8s8'
        if self.op_types:
            base += '_' + '-'.join(o.lower() for o in self.op_types)
        if self.keep_tail:   # 0.25 -> tail25fp32, 0.125 -> tail12p5fp32
            base += f'_tail{self.keep_tail * 100:g}fp32'.replace('.', 'p')
        if self.exclude:
            base += f'_excl{len(self.exclude)}'
        return base

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop('extra')
        d['name'] = self.name
        d['exclude'] = list(self.exclude)
        d['op_types'] = list(self.op_types)
        return d


def default_recipes(methods: tuple[str, ...] = ('minmax', 'percentile'),
                    keep_tail: float = 0.25) -> list[Recipe]:
    """The per-stage candidate set: every kind, each calibration method, and one partial mix."""
    recipes = [Recipe('fp32')]
    recipes += [Recipe('qdq_int8', method=m) for m in methods]
    if keep_tail:
        recipes.append(Recipe('qdq_int8', method=methods[0], keep_tail=keep_tail))
    recipes.append(Recipe('qdq_int8', method=methods[0], activation='u8',
                          op_types=('MatMul', 'Gemm')))
    recipes += [Recipe('dynamic_int8'), Recipe('nbits', bits=4), Recipe('nbits', bits=8),
                Recipe('fp16')]
    return recipes


def exclusion_variants(recipes: Iterable[Recipe], exclude: Sequence[str] = (),
                       keep_tails: Sequence[float] = ()) -> list[Recipe]:
    """Each quantized (not fp32) recipe again with `exclude` added to its own exclusions and,
    for each of `keep_tails`, that fraction kept in float (none given: the recipe's own).

    Variants equal to one another or to their recipe are left out, so the result is empty when
    there is nothing to exclude."""
    out: list[Recipe] = []
    for recipe in recipes:
        if recipe.kind == 'fp32':
            continue
        for tail in list(keep_tails) or [recipe.keep_tail]:
            variant = replace(recipe, exclude=tuple(dict.fromkeys((*recipe.exclude, *exclude))),
                              keep_tail=tail)
            if variant != recipe and variant not in out:
                out.append(variant)
    return out


def stage_candidates(recipes: Sequence[Recipe], extra: Mapping[str, Sequence[Recipe]],
                     stages: Sequence[str]) -> dict[str, list[Recipe]]:
    """{stage: the shared `recipes` + that stage's `extra` ones}, duplicates dropped.

    Raises ValueError for an extra of an unknown stage, or two different recipes of one stage
    with the same name (names key the files, the report and the allocation)."""
    unknown = sorted(set(extra) - set(stages))
    if unknown:
        raise ValueError(f'candidates for unknown stage(s) {unknown}; stages: {list(stages)}')
    out: dict[str, list[Recipe]] = {}
    for stage in stages:
        named: dict[str, Recipe] = {}
        for recipe in (*recipes, *extra.get(stage, ())):
            other = named.setdefault(recipe.name, recipe)
            if other != recipe:
                raise ValueError(f'{stage}: two different candidates are both named '
                                 f'{recipe.name!r}: {other.to_dict()} and {recipe.to_dict()}')
        out[stage] = list(named.values())
    return out


def check_exclusions(stage_files: Mapping[str, Path],
                     extra: Mapping[str, Sequence[Recipe]]) -> None:
    """Every exclusion regex of a stage's extra recipes compiles and names at least one node of
    that stage's graph; a regex that names nothing would build a duplicate of its recipe.

    Raises VlaEdgeError naming the stage, the regex and some of the graph's node names."""
    for stage, recipes in extra.items():
        patterns = list(dict.fromkeys(p for r in recipes for p in r.exclude))
        if not patterns:
            continue
        nodes = onnx.load(str(stage_files[stage]), load_external_data=False).graph.node
        names = [n.name for n in nodes]
        for pattern in patterns:
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise VlaEdgeError(f'{stage}: exclusion {pattern!r} is not a valid regular '
                                   f'expression: {exc}') from exc
            if not any(regex.search(n) for n in names):
                weights = [n.name for n in nodes if n.op_type in ('MatMul', 'Gemm', 'Conv')]
                raise VlaEdgeError(f'{stage}: exclusion {pattern!r} matches none of its '
                                   f'{len(names)} nodes (some of its MatMul/Gemm/Conv nodes: '
                                   f'{", ".join(weights[:8]) or "none"})')


def excluded_nodes(model: onnx.ModelProto, recipe: Recipe) -> list[str]:
    """Names of the nodes the recipe keeps in float."""
    names = [n.name for n in model.graph.node if any(re.search(p, n.name) for p in recipe.exclude)]
    if recipe.keep_tail:
        mm = [n.name for n in model.graph.node if n.op_type in ('MatMul', 'Gemm')
              and _has_initializer_input(model, n)]
        k = max(1, int(round(len(mm) * recipe.keep_tail)))
        names += mm[-k:]
    return sorted(set(names))


def build(src: Path, dst: Path, recipe: Recipe, feeds: list[Feed] | None = None) -> Path:
    """Write the candidate for `recipe` of the FP32 stage file `src` to `dst`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if recipe.kind == 'fp32':
        shutil.copyfile(src, dst)
        return dst
    model = onnx.load(str(src))
    exclude = excluded_nodes(model, recipe)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # the quantizers warn per tensor on the root logger
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # and print calibration chatter
            if recipe.kind == 'qdq_int8':
                _static(src, dst, recipe, feeds, exclude, model)
            elif recipe.kind == 'dynamic_int8':
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(src), str(dst), op_types_to_quantize=['MatMul', 'Gemm'],
                                 weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
            elif recipe.kind == 'nbits':
                _nbits(model, dst, recipe, exclude)
            elif recipe.kind == 'fp16':
                from onnxruntime.transformers.float16 import convert_float_to_float16

                half = convert_float_to_float16(model, keep_io_types=True, node_block_list=exclude)
                onnx.save(half, str(dst))
    except VlaEdgeError:
        raise
    except Exception as exc:   # the quantizers raise many unrelated types on a graph they reject
        raise VlaEdgeError(f'building {recipe.name} from {src.name} failed: '
                           f'{type(exc).__name__}: {str(exc)[:200]}') from exc
    finally:
        root.setLevel(level)
    return dst


def _static(src: Path, dst: Path, recipe: Recipe, feeds: list[Feed] | None, exclude: list[str],
            model: onnx.ModelProto) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not feeds:
        raise VlaEdgeError(f'{recipe.name} needs calibration feeds for {src.name}')
    method = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile,
              'entropy': CalibrationMethod.Entropy}[recipe.method]
    inputs = [i.name for i in model.graph.input]
    extra = {'CalibMovingAverage': False, **recipe.extra}
    if recipe.method == 'percentile':
        extra.setdefault('CalibPercentile', 99.99)
    quantize_static(str(src), str(dst), FeedReader(feeds, inputs), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8, calibrate_method=method,
                    activation_type=QuantType.QUInt8 if recipe.activation == 'u8'
                    else QuantType.QInt8, op_types_to_quantize=list(recipe.op_types) or None,
                    nodes_to_exclude=exclude, extra_options=extra)


def _nbits(model: onnx.ModelProto, dst: Path, recipe: Recipe, exclude: list[str]) -> None:
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )
    except ImportError as exc:   # older onnxruntime builds
        raise VlaEdgeError('weight-only MatMulNBits is not available in this onnxruntime '
                           f'({exc})') from exc
    cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, bits=recipe.bits,
                                       accuracy_level=recipe.extra.get('accuracy_level', 4))
    q = MatMulNBitsQuantizer(model, bits=recipe.bits, block_size=32, is_symmetric=True,
                             nodes_to_exclude=exclude, algo_config=cfg)
    q.process()
    q.model.save_model_to_file(str(dst), use_external_data_format=False)


def _has_initializer_input(model: onnx.ModelProto, node: onnx.NodeProto) -> bool:
    inits = {i.name for i in model.graph.initializer}
    return any(i in inits for i in node.input)
