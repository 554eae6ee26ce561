"""The model contract (DESIGN.md §3): `manifest.yaml` beside one ONNX file per stage.

Loading checks everything that would otherwise fail later and obscurely: the folder and files exist,
every required field is present with a usable value (counts are positive integers, the control rate
a positive finite number), each file's sha256 matches, and (in the runtime) each ONNX graph's
inputs and outputs agree with what the manifest declares.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vla_edge.core.errors import ModelLoadError

MANIFEST_NAME = 'manifest.yaml'
FORMAT_VERSION = 1
STAGES = ('instruction_encoder', 'vision_encoder', 'backbone', 'action_expert')
REQUIRED_FIELDS = ('format_version', 'name', 'stages', 'image', 'chunk_length', 'action_dim',
                   'state_dim', 'control_rate_hz', 'denoising_steps', 'normalization')
REQUIRED_NORMALIZATION = ('state_mean', 'state_std', 'action_mean', 'action_std')
POSITIVE_INT_FIELDS = ('chunk_length', 'action_dim', 'state_dim', 'denoising_steps')


@dataclass(frozen=True)
class TensorSpec:
    """A graph input/output as the manifest declares it. String dims are symbolic (e.g. 'batch')."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    @classmethod
    def parse(cls, name: str, raw: Any, where: str) -> TensorSpec:
        if not isinstance(raw, dict) or 'shape' not in raw or 'dtype' not in raw:
            raise ModelLoadError(f'{where}: tensor {name!r} needs "shape" and "dtype"')
        return cls(name, tuple(raw['shape']), str(raw['dtype']))


@dataclass(frozen=True)
class StageSpec:
    """One stage's file, hash, declared inputs/outputs and any extra fields."""

    name: str
    path: Path
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    extra: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """A parsed, file-checked manifest. `raw` keeps every field, including ones added later."""

    folder: Path
    raw: dict[str, Any]
    stages: dict[str, StageSpec]

    @property
    def name(self) -> str:
        return str(self.raw['name'])

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.raw['image']['height']), int(self.raw['image']['width'])

    @property
    def chunk_length(self) -> int:
        return int(self.raw['chunk_length'])

    @property
    def action_dim(self) -> int:
        return int(self.raw['action_dim'])

    @property
    def state_dim(self) -> int:
        return int(self.raw['state_dim'])

    @property
    def control_rate_hz(self) -> float:
        return float(self.raw['control_rate_hz'])

    @property
    def chunk_duration_s(self) -> float:
        """How long one chunk lasts when executed at the control rate."""
        return self.chunk_length / self.control_rate_hz

    @property
    def denoising_steps(self) -> int:
        return int(self.raw['denoising_steps'])

    @property
    def normalization(self) -> dict[str, list[float]]:
        return self.raw['normalization']

    @property
    def training_seed_range(self) -> tuple[int, int]:
        """[first, end) of the sim seeds the policy was trained on; (0, 0) when not recorded."""
        lo, hi = (self.raw.get('training') or {}).get('training_seed_range') or (0, 0)
        return int(lo), int(hi)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open('rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def load_manifest(folder: str | Path, verify_hashes: bool = True) -> Manifest:
    """Parse and check `folder/manifest.yaml`; raise ModelLoadError naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f'model folder {folder} does not exist (or is not a folder)')
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ModelLoadError(f'{folder} has no {MANIFEST_NAME}: not a vla_edge model folder')
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelLoadError(f'{path} is not valid YAML: {exc}') from exc
    if not isinstance(raw, dict):
        raise ModelLoadError(f'{path} must be a YAML mapping, got {type(raw).__name__}')
    missing = [f for f in REQUIRED_FIELDS if f not in raw]
    if missing:
        raise ModelLoadError(f'{path} is missing required field(s): {", ".join(missing)}')
    if raw['format_version'] != FORMAT_VERSION:
        raise ModelLoadError(f'{path}: format_version {raw["format_version"]} is not supported '
                             f'(this vla_edge reads version {FORMAT_VERSION})')
    for key in ('image', 'normalization', 'stages'):
        if not isinstance(raw[key], dict):
            raise ModelLoadError(f'{path}: {key} must be a mapping, got {raw[key]!r}')
    for key in POSITIVE_INT_FIELDS:
        _positive_int(raw[key], key, path)
    _positive_rate(raw['control_rate_hz'], 'control_rate_hz', path)
    norm_missing = [f for f in REQUIRED_NORMALIZATION if f not in raw['normalization']]
    if norm_missing:
        raise ModelLoadError(f'{path}: normalization is missing {", ".join(norm_missing)}')
    dims = {'state': raw['state_dim'], 'action': raw['action_dim']}
    for kind, n in dims.items():
        for stat in ('mean', 'std'):
            values = raw['normalization'][f'{kind}_{stat}']
            if not isinstance(values, list) or len(values) != n:
                raise ModelLoadError(f'{path}: normalization {kind}_{stat} must list {n} values '
                                     f'({kind}_dim), got {values!r}')
            if not all(_is_number(v) and math.isfinite(v) for v in values):
                raise ModelLoadError(f'{path}: normalization {kind}_{stat} must be finite '
                                     f'numbers, got {values!r}')
        if any(v <= 0 for v in raw['normalization'][f'{kind}_std']):
            raise ModelLoadError(f'{path}: normalization {kind}_std must be positive numbers, '
                                 f'got {raw["normalization"][f"{kind}_std"]}')
    for key in ('height', 'width'):
        if key not in raw['image']:
            raise ModelLoadError(f'{path}: image is missing "{key}"')
        _positive_int(raw['image'][key], f'image.{key}', path)
    _check_optional_fields(raw, path)
    stages = {}
    for stage in STAGES:
        if stage not in raw['stages']:
            raise ModelLoadError(f'{path}: stages is missing "{stage}"')
        stages[stage] = _parse_stage(folder, stage, raw['stages'][stage], verify_hashes)
    return Manifest(folder=folder, raw=raw, stages=stages)


def _check_optional_fields(raw: dict[str, Any], path: Path) -> None:
    """Fields a model may lack, checked when present: chunks are matched by `action_names`, and
    evaluation refuses seeds inside `training.training_seed_range`."""
    names = raw.get('action_names')
    if names is not None and (not isinstance(names, list) or len(names) != raw['action_dim']
                              or not all(isinstance(n, str) and n for n in names)
                              or len(set(names)) != len(names)):
        raise ModelLoadError(f'{path}: action_names must list {raw["action_dim"]} distinct names '
                             f'(action_dim), got {names!r}')
    training = raw.get('training')
    if training is None:
        return
    if not isinstance(training, dict):
        raise ModelLoadError(f'{path}: training must be a mapping, got {training!r}')
    seeds = training.get('training_seed_range')
    integers = isinstance(seeds, list) and len(seeds) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in seeds)
    if seeds is not None and not (integers and seeds[0] <= seeds[1]):
        raise ModelLoadError(f'{path}: training.training_seed_range must be [first, end) '
                             f'integers, got {seeds!r}')


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value: Any, field: str, path: Path) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelLoadError(f'{path}: {field} must be a positive integer, got {value!r}')


def _positive_rate(value: Any, field: str, path: Path) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ModelLoadError(f'{path}: {field} must be a finite number > 0, got {value!r}')


def _parse_stage(folder: Path, stage: str, raw: Any, verify_hashes: bool) -> StageSpec:
    where = f'{folder / MANIFEST_NAME}: stage {stage}'
    if not isinstance(raw, dict):
        raise ModelLoadError(f'{where} must be a mapping')
    for key in ('file', 'sha256', 'inputs', 'outputs'):
        if key not in raw:
            raise ModelLoadError(f'{where} is missing "{key}"')
    path = folder / raw['file']
    if not path.is_file():
        raise ModelLoadError(f'{where}: file {path} is missing'
                             + (' (run `make setup`: it is generated from the installed '
                                'sentence encoder)' if stage == 'instruction_encoder' else ''))
    if verify_hashes:
        _check_hash(path, raw['sha256'], where)
        for key, value in raw.items():   # companion files, e.g. tokenizer + tokenizer_sha256
            if key.endswith('_sha256') and key[:-7] in raw:
                _check_hash(folder / raw[key[:-7]], value, where)
    inputs = tuple(TensorSpec.parse(n, s, where) for n, s in raw['inputs'].items())
    outputs = tuple(TensorSpec.parse(n, s, where) for n, s in raw['outputs'].items())
    extra = {k: v for k, v in raw.items() if k not in ('file', 'sha256', 'inputs', 'outputs')}
    return StageSpec(stage, path, str(raw['sha256']), inputs, outputs, extra)


def _check_hash(path: Path, expected: str, where: str) -> None:
    if not path.is_file():
        raise ModelLoadError(f'{where}: file {path} is missing')
    actual = sha256_of(path)
    if actual != expected:
        raise ModelLoadError(f'{where}: sha256 mismatch for {path.name} (manifest '
                             f'{expected[:12]}…, file {actual[:12]}…): the file was changed '
                             'or corrupted')


def write_manifest(folder: Path, raw: dict[str, Any]) -> Path:
    path = folder / MANIFEST_NAME
    path.write_text(yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100))
    return path
