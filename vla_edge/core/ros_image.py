"""Turn ROS 2 camera messages into the RGB uint8 (H, W, 3) arrays the vision encoder expects.

This is core code, so it imports neither rclpy nor sensor_msgs: messages are duck-typed by their
fields (Image: height, width, encoding, is_bigendian, step, data; CompressedImage: format, data).
Malformed messages raise an InputError that says what is wrong instead of a numpy reshape error.
"""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from vla_edge.core.errors import InputError, shown

# encoding -> (channels, bytes per channel)
_RAW_ENCODINGS = {'rgb8': (3, 1), 'bgr8': (3, 1), 'rgba8': (4, 1), 'bgra8': (4, 1),
                  'mono8': (1, 1), 'mono16': (1, 2)}
SUPPORTED_ENCODINGS = tuple(_RAW_ENCODINGS)
SUPPORTED_COMPRESSED = ('jpeg', 'png')
# Larger frames are refused before they are converted or decoded: 8K video is 33 MP, and a
# 441 KB PNG of 12000 x 12000 zeros once took vla_node ~8 s and 2 GB to decode and gate.
MAX_IMAGE_PIXELS = 36_000_000


def _as_bytes(data: Any) -> np.ndarray:
    """View msg.data (array.array('B') in rclpy, bytes elsewhere) as flat uint8 without copying."""
    try:
        return np.frombuffer(memoryview(data).cast('B'), dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _encoding(msg: Any) -> str:
    encoding = str(msg.encoding).strip().lower()
    if encoding not in _RAW_ENCODINGS:
        raise InputError(f'unsupported image encoding {msg.encoding!r}; supported encodings: '
                         f'{", ".join(SUPPORTED_ENCODINGS)}')
    return encoding


def _pixels(msg: Any, encoding: str) -> np.ndarray:
    """Check the geometry and return an (H, W, C) view of the pixels, row padding removed."""
    channels, depth = _RAW_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError(f'image has zero size: width={width}, height={height}')
    _check_pixel_count(width, height, 'image')
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise InputError(f'image step {step} is smaller than width*bytes_per_pixel = '
                         f'{width}*{channels * depth} = {row_bytes} for encoding {encoding!r}')
    buf = _as_bytes(msg.data)
    if buf.size < height * step:
        raise InputError(f'image data has {buf.size} bytes, fewer than height*step = '
                         f'{height}*{step} = {height * step}')
    rows = buf[:height * step].reshape(height, step)[:, :row_bytes]
    if depth == 2:
        dtype = np.dtype('>u2' if msg.is_bigendian else '<u2')
        rows = np.ascontiguousarray(rows).view(dtype)
    return rows.reshape(height, width, channels)


def _check_pixel_count(width: int, height: int, what: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f'{what} is {width}x{height} = {width * height / 1e6:.0f} MP; frames '
                         f'over {MAX_IMAGE_PIXELS / 1e6:.0f} MP are refused')


def compressed_size(buf: np.ndarray, codec: str) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame header, without decoding;
    None when the header cannot be read (the decoder then says what is wrong)."""
    data = buf.tobytes() if codec == 'png' else buf
    if codec == 'png':
        if len(data) >= 24 and data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR':
            return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
        return None
    i, n = 2, len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = int(data[i + 1])
        if marker == 0xFF:                                  # fill byte
            i += 1
            continue
        length = (int(data[i + 2]) << 8) | int(data[i + 3])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):   # start of frame
            if i + 9 > n:
                return None
            height = (int(data[i + 5]) << 8) | int(data[i + 6])
            width = (int(data[i + 7]) << 8) | int(data[i + 8])
            return width, height
        i += 2 + length
    return None


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Convert a sensor_msgs/Image to a contiguous RGB uint8 copy (never a view of msg.data).

    mono16 is scaled to 8 bit by keeping the high byte (value >> 8), as cameras use the full range.
    """
    encoding = _encoding(msg)
    pix = _pixels(msg, encoding)
    if encoding == 'bgr8':
        pix = pix[..., ::-1]
    elif encoding == 'rgba8':
        pix = pix[..., :3]
    elif encoding == 'bgra8':
        pix = pix[..., 2::-1]
    elif encoding == 'mono16':
        pix = np.repeat((pix >> 8).astype(np.uint8), 3, axis=2)
    elif encoding == 'mono8':
        pix = np.repeat(pix, 3, axis=2)
    return np.array(pix, dtype=np.uint8, order='C', copy=True)


def _codec(fmt: Any) -> str:
    """Pick the codec from formats like 'jpeg' or 'rgb8; jpeg compressed bgr8'."""
    text = str(fmt).strip().lower()
    if 'compresseddepth' in text:
        raise InputError(f'compressed format {fmt!r} is a compressedDepth image (a depth map '
                         f'with a header), not a camera image; supported: jpeg, png')
    words = set(re.findall(r'[a-z0-9]+', text))
    if words & {'jpeg', 'jpg'}:
        return 'jpeg'
    if 'png' in words:
        return 'png'
    raise InputError(f'unknown compressed image format {fmt!r}; supported: '
                     f'{", ".join(SUPPORTED_COMPRESSED)}')


def _data_codec(buf: np.ndarray) -> str | None:
    """The codec the data's own signature names: what cv2.imdecode will decode it as."""
    head = buf[:8].tobytes()
    if head.startswith(b'\xff\xd8\xff'):
        return 'jpeg'
    if head == b'\x89PNG\r\n\x1a\n':
        return 'png'
    return None


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to RGB uint8; grey becomes 3 channels.

    The size in the header is checked before decoding, so the data must be what its format says:
    cv2.imdecode decodes by the data's signature, and a 5 KB JPEG labelled png (its PNG header
    unreadable) would otherwise decode to 100 MP, for 1.7 GB and seconds of a node's time.
    A header that gives no size is not decoded either."""
    codec = _codec(msg.format)
    buf = _as_bytes(msg.data)
    if buf.size == 0:
        raise InputError(f'compressed image ({codec}) has no data')
    actual = _data_codec(buf)
    if actual != codec:
        found = (f'{actual} data' if actual else
                 f'data that is neither jpeg nor png (first bytes {buf[:8].tobytes().hex(" ")})')
        raise InputError(f'could not decode the compressed image: its format '
                         f'{shown(str(msg.format))} says {codec}, but it carries {found}')
    size = compressed_size(buf, codec)
    if size is None:
        raise InputError(f'could not decode the compressed image data as {codec}: no image '
                         f'size in its header ({buf.size} bytes)')
    _check_pixel_count(*size, f'compressed image ({codec}, {buf.size} bytes)')
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # always 3-channel 8-bit BGR
    if bgr is None:
        raise InputError(f'could not decode the compressed image data as {codec} '
                         f'({buf.size} bytes, format {msg.format!r})')
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def rgb_to_image_msg_fields(rgb: np.ndarray, encoding: str = 'rgb8') -> dict[str, Any]:
    """Fields for a sensor_msgs/Image holding `rgb`; `data` is bytes, which rclpy copies quickly."""
    if encoding not in ('rgb8', 'bgr8'):
        raise InputError(f'cannot publish encoding {encoding!r}; supported encodings: rgb8, bgr8')
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3:
        got = f'{rgb.dtype} {rgb.shape}' if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError(f'image must be an (H, W, 3) uint8 RGB array, got {got}')
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise InputError(f'image has zero size: width={width}, height={height}')
    pix = rgb[..., ::-1] if encoding == 'bgr8' else rgb
    return {'height': height, 'width': width, 'encoding': encoding, 'is_bigendian': 0,
            'step': width * 3, 'data': np.ascontiguousarray(pix).tobytes()}


class ImageConverter:
    """Converts raw images with ROS 2 cv_bridge when it works, else with this module.

    PyPI's `cv-bridge` is a ROS 1 port that breaks under numpy 2, so the bridge must pass a tiny
    self-test before it is trusted. Errors are InputErrors whichever backend runs.
    """

    def __init__(self, prefer_cv_bridge: bool = True) -> None:
        self._bridge: Any = None
        if prefer_cv_bridge:
            self._bridge = _working_cv_bridge()
        self.backend = 'cv_bridge' if self._bridge is not None else 'vla_edge'

    def to_rgb(self, msg: Any) -> np.ndarray:
        """RGB uint8 (H, W, 3) copy of an Image or CompressedImage (has `format`)."""
        if hasattr(msg, 'format'):  # cv_bridge only wraps cv2.imdecode and fails on grey PNG
            return compressed_msg_to_rgb(msg)
        if self._bridge is None:
            return image_msg_to_rgb(msg)
        _pixels(msg, _encoding(msg))  # same InputErrors as the numpy path
        return self._convert(lambda: self._bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8'))

    @staticmethod
    def _convert(call: Any) -> np.ndarray:
        try:
            out = call()
        except Exception as exc:  # cv_bridge raises CvBridgeError, cv2.error, TypeError...
            raise InputError(f'cv_bridge could not convert the image: {exc}') from exc
        if out is None or out.ndim != 3 or out.shape[2] != 3:
            raise InputError(f'cv_bridge returned no RGB image (got {getattr(out, "shape", out)})')
        return np.array(out, dtype=np.uint8, order='C', copy=True)


def _working_cv_bridge() -> Any:
    """A CvBridge that converts a 2x2 rgb8 image correctly, or None."""
    try:
        from cv_bridge import CvBridge

        bridge = CvBridge()
        expected = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
        msg = SimpleNamespace(height=2, width=2, encoding='rgb8', is_bigendian=0, step=6,
                              data=expected.tobytes())
        out = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8'))
        return bridge if np.array_equal(out, expected) else None
    except Exception:
        return None
