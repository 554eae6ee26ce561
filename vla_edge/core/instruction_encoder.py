"""Instruction text -> sentence embedding, with ONNX Runtime and `tokenizers` (no torch).

Runs once per new instruction; results are cached, since a robot hears the same instruction for
many chunks.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from vla_edge.core.errors import ModelLoadError
from vla_edge.core.instruction_text import normalise_instruction
from vla_edge.core.manifest import StageSpec


class InstructionEncoder:
    """Tokenizer + ONNX sentence encoder + a small LRU cache keyed by the normalised text."""

    def __init__(self, spec: StageSpec, session: ort.InferenceSession, cache_size: int = 64):
        tokenizer_file = spec.extra.get('tokenizer')
        if not tokenizer_file:
            raise ModelLoadError('stage instruction_encoder: manifest names no "tokenizer" file')
        try:
            self.tokenizer = Tokenizer.from_file(str(spec.path.parent / tokenizer_file))
        except Exception as exc:
            raise ModelLoadError(f'stage instruction_encoder: cannot read tokenizer '
                                 f'{tokenizer_file}: {exc}') from exc
        self.max_tokens = int(spec.extra.get('max_tokens', 32))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding(length=self.max_tokens)
        self.session = session
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size

    def __call__(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector for `text`."""
        key = normalise_instruction(text)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        enc = self.tokenizer.encode(key)
        feeds = {'input_ids': np.array([enc.ids], dtype=np.int64),
                 'attention_mask': np.array([enc.attention_mask], dtype=np.int64)}
        embedding = self.session.run(None, feeds)[0][0].astype(np.float32)
        self.cache[key] = embedding
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return embedding
