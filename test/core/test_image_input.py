import numpy as np
import pytest

from vla_edge.core.errors import InputError
from vla_edge.core.image_input import prepare_image


def test_rgb_of_the_right_size_passes_unchanged():
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    notes = []
    out = prepare_image(img, 64, 64, notes.append)
    assert np.array_equal(out, img) and notes == []


def test_wrong_size_is_resized_and_said():
    notes = []
    out = prepare_image(np.zeros((480, 640, 3), np.uint8), 128, 128, notes.append)
    assert out.shape == (128, 128, 3)
    assert any('resizing image from 640x480 to the model input 128x128' in n for n in notes)


@pytest.mark.parametrize('shape,word', [((32, 32), 'mono'), ((32, 32, 1), 'mono'),
                                        ((32, 32, 4), 'alpha')])
def test_channel_conversions_are_said(shape, word):
    notes = []
    out = prepare_image(np.full(shape, 100, np.uint8), 32, 32, notes.append)
    assert out.shape == (32, 32, 3) and np.all(out == 100)
    assert any(word in n for n in notes)


@pytest.mark.parametrize('img,match', [
    (np.zeros((32, 32, 2), np.uint8), '1, 3 or 4 channels'),
    (np.zeros((32, 32, 3), np.float32), 'uint8'),
    (np.zeros((0, 32, 3), np.uint8), 'empty'),
    (np.zeros((2, 32, 32, 3), np.uint8), 'shape'),
    ([[1, 2], [3, 4]], 'numpy array'),
])
def test_unusable_images_get_a_clear_error(img, match):
    with pytest.raises(InputError, match=match):
        prepare_image(img, 32, 32)
