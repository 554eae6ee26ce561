"""The output: a model folder in the same manifest format, loadable exactly like the FP32 one.

Stage files are replaced by the chosen candidates, every sha256 is recomputed, each stage's
`precision` names its recipe, and a top-level `quantization:` mapping records how the folder was
made (the manifest loader keeps unknown top-level keys in `Manifest.raw`).
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

from vla_edge.core.manifest import Manifest, load_manifest, sha256_of, write_manifest


def check_out_folder(source_dir: Path, out_dir: Path) -> None:
    """The output must not be the source: writing there would overwrite the FP32 model."""
    if Path(out_dir).resolve() == Path(source_dir).resolve():
        raise ValueError(f'--out must differ from the source model folder ({out_dir})')


def write_model_folder(source: Manifest, out_dir: Path, stage_files: dict[str, Path],
                       precision: dict[str, str], quantization: dict) -> Manifest:
    """Copy `source` to `out_dir` with `stage_files` swapped in; return the re-loaded manifest."""
    out_dir = Path(out_dir)
    check_out_folder(source.folder, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = copy.deepcopy(source.raw)
    for stage, spec in source.stages.items():
        entry = raw['stages'][stage]
        target = out_dir / entry['file']
        shutil.copyfile(stage_files.get(stage, spec.path), target)
        entry['sha256'] = sha256_of(target)
        entry['precision'] = precision.get(stage, entry.get('precision', 'fp32'))
        for key in list(entry):   # companion files (tokenizer) travel along
            if key.endswith('_sha256') and key[:-7] in entry:
                shutil.copyfile(source.folder / entry[key[:-7]], out_dir / entry[key[:-7]])
    raw['name'] = f'{source.name}-quantized'
    raw['quantization'] = quantization
    write_manifest(out_dir, raw)
    return load_manifest(out_dir)
