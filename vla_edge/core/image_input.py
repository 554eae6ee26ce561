"""Turn whatever the camera delivers into the RGB uint8 frame the vision encoder expects.

Sensible conversions (grey -> RGB, RGBA -> RGB, resize) are done and reported once per kind; inputs
that cannot be an image are rejected with an InputError that says what arrived.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from vla_edge.core.errors import InputError


def prepare_image(image: np.ndarray, height: int, width: int,
                  note: Callable[[str], None] | None = None) -> np.ndarray:
    """Return a contiguous (height, width, 3) uint8 RGB copy of `image`.

    `note` receives a sentence for every conversion made, so a caller can log it (once).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f'image must be a numpy array, got {type(image).__name__}')
    if image.size == 0:
        raise InputError(f'image is empty (shape {image.shape})')
    if image.dtype != np.uint8:
        raise InputError(f'image dtype must be uint8 (8-bit camera data), got {image.dtype}')
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise InputError(f'image must be (H, W) or (H, W, C), got shape {image.shape}')
    channels = image.shape[2]
    if channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        _say(note, 'converting 1-channel (mono) image to RGB')
    elif channels == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
        _say(note, 'dropping the alpha channel of a 4-channel image')
    elif channels != 3:
        raise InputError(
            f'image must have 1, 3 or 4 channels, got {channels} (shape {image.shape})')
    if image.shape[:2] != (height, width):
        _say(note, f'resizing image from {image.shape[1]}x{image.shape[0]} to the model input '
                   f'{width}x{height}')
        interp = cv2.INTER_AREA if image.shape[0] > height else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, height), interpolation=interp)
    return np.ascontiguousarray(image)


def _say(note: Callable[[str], None] | None, message: str) -> None:
    if note is not None:
        note(message)
