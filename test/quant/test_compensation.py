import numpy as np
import onnx
import onnxruntime as ort
import pytest

from vla_edge.quant.compensation import (
    AffineCorrection,
    compensate,
    fit_affine,
    insert_affine,
)


def test_fit_recovers_known_scale_and_shift():
    rng = np.random.default_rng(0)
    quantized = rng.normal(0.3, 1.7, (3, 2, 4, 82, 128)).astype(np.float32)
    scale = rng.uniform(0.6, 1.8, (3, 2, 128)).astype(np.float32)
    shift = rng.normal(0.0, 0.5, (3, 2, 128)).astype(np.float32)
    reference = AffineCorrection(scale, shift).apply(quantized)
    corr = fit_affine(reference, quantized)
    np.testing.assert_allclose(corr.scale, scale, rtol=1e-4)
    np.testing.assert_allclose(corr.shift, shift, atol=1e-4)


def test_fit_clips_the_scale():
    rng = np.random.default_rng(1)
    quantized = rng.normal(size=(1, 2, 1, 50, 8)).astype(np.float32)
    corr = fit_affine(quantized * 10.0, quantized, clip=(0.5, 2.0))
    assert np.all(corr.scale == 2.0)


def test_folded_expert_equals_explicit_affine(reference_model_dir):
    model = onnx.load(str(reference_model_dir / 'action_expert.onnx'))
    rng = np.random.default_rng(2)
    corr = AffineCorrection(rng.uniform(0.5, 2.0, (3, 2, 128)).astype(np.float32),
                            rng.normal(0.0, 0.5, (3, 2, 128)).astype(np.float32))
    folded, how = compensate(model, corr)
    assert how.startswith('folded')
    assert len(folded.graph.node) == len(model.graph.node)   # no extra op at run time
    feed = {'prefix_kv': rng.normal(size=(3, 2, 1, 82, 128)).astype(np.float32),
            'noisy_actions': rng.normal(size=(1, 50, 3)).astype(np.float32),
            'tau': np.array([0.4], np.float32)}

    def run(m):
        s = ort.InferenceSession(m.SerializeToString(), providers=['CPUExecutionProvider'])
        return s.run(None, feed)[0]
    explicit, plain = run(insert_affine(model, corr)), run(folded)
    np.testing.assert_allclose(plain, explicit, atol=1e-4)
    assert np.abs(run(model) - explicit).max() > 1e-2   # the correction does change the output


def test_fit_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        fit_affine(np.zeros((3, 2, 1, 4, 8)), np.zeros((3, 2, 1, 5, 8)))
