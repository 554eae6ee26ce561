"""The ONNX instruction encoder reproduces sentence-transformers' embeddings."""
import numpy as np

from vla_edge.reference.text_embedding import SentenceTransformerEmbedder
from vla_edge.sim.tasks import Task, heldout_instructions, train_instructions


def test_onnx_embeddings_match_sentence_transformers(reference_runtime):
    texts = train_instructions(Task('tea_bag', 'mug'))[:3] + heldout_instructions(
        Task('blue_block', 'bowl'))[:3]
    reference = SentenceTransformerEmbedder().encode(texts)
    onnx = np.stack([reference_runtime.encode_instruction(t) for t in texts])
    assert np.abs(onnx - reference).max() < 1e-5
