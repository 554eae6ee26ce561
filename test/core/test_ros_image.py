"""ROS camera messages -> RGB: real sensor_msgs classes, real OpenCV codecs, no mocked messages."""
import sys
import types

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from vla_edge.core.errors import InputError
from vla_edge.core.ros_image import (
    MAX_IMAGE_PIXELS,
    ImageConverter,
    compressed_msg_to_rgb,
    compressed_size,
    image_msg_to_rgb,
    rgb_to_image_msg_fields,
)

H, W = 5, 7
PAD_BYTE = 0xEE  # never appears in the test pattern, so reading padding is visible
RGB = np.random.default_rng(1).integers(0, 200, (H, W, 3), dtype=np.uint8)
ALPHA = np.random.default_rng(2).integers(0, 256, (H, W, 1), dtype=np.uint8)
GREY = RGB[..., 0]


def make_image(pixels, encoding, pad=0, bigendian=False):
    """A real sensor_msgs/Image holding `pixels` (H, W, C) with `pad` junk bytes per row."""
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype('>u2' if bigendian else '<u2')
    raw = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    rows = np.concatenate([raw, np.full((height, pad), PAD_BYTE, np.uint8)], axis=1)
    return Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                 step=rows.shape[1], data=rows.tobytes())


def encoded(encoding):
    """The pattern encoded by hand into `encoding`, and the RGB a reader must get back."""
    if encoding == 'rgb8':
        return RGB, RGB
    if encoding == 'bgr8':
        return RGB[..., ::-1], RGB
    if encoding == 'rgba8':
        return np.concatenate([RGB, ALPHA], axis=2), RGB
    if encoding == 'bgra8':
        return np.concatenate([RGB[..., ::-1], ALPHA], axis=2), RGB
    if encoding == 'mono8':
        return GREY[..., None], np.repeat(GREY[..., None], 3, axis=2)
    raise AssertionError(encoding)


def compressed(rgb_or_grey, ext, fmt):
    img = rgb_or_grey if rgb_or_grey.ndim == 2 else cv2.cvtColor(rgb_or_grey, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, img, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == '.jpg' else [])
    assert ok
    return CompressedImage(format=fmt, data=buf.tobytes())


def smooth_rgb(height=48, width=64):
    """Gradients (R across, G down, B low) that survive JPEG and reveal an R/B swap."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // (width - 1), yy * 255 // (height - 1), np.full_like(xx, 30)],
                    axis=2).astype(np.uint8)


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_every_raw_encoding_round_trips_to_the_same_rgb(encoding, pad):
    pixels, expected = encoded(encoding)
    out = image_msg_to_rgb(make_image(pixels, encoding, pad=pad))
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags['C_CONTIGUOUS']
    np.testing.assert_array_equal(out, expected)


def test_row_padding_is_skipped_not_read_as_pixels():
    msg = make_image(RGB, 'rgb8', pad=9)
    assert msg.step == W * 3 + 9 and len(msg.data) == H * msg.step
    out = image_msg_to_rgb(msg)
    assert not np.any(out == PAD_BYTE)
    np.testing.assert_array_equal(out, RGB)


def test_mono8_becomes_three_equal_channels():
    out = image_msg_to_rgb(make_image(GREY[..., None], 'mono8'))
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], GREY)


@pytest.mark.parametrize('bigendian', [False, True])
def test_mono16_keeps_the_high_byte_in_either_byte_order(bigendian):
    values = (GREY.astype(np.uint16) << 8) | 0xAB  # a wrong byte order would give 0xAB
    out = image_msg_to_rgb(make_image(values[..., None], 'mono16', pad=3, bigendian=bigendian))
    np.testing.assert_array_equal(out, np.repeat(GREY[..., None], 3, axis=2))


def test_result_is_a_copy_not_a_view_of_msg_data():
    msg = make_image(RGB, 'rgb8')  # no padding and no channel change: a view would be easy
    assert msg.data.typecode == 'B'  # rclpy stores uint8[] as array.array, mutable in place
    out = image_msg_to_rgb(msg)
    for i in range(len(msg.data)):
        msg.data[i] ^= 0xFF
    np.testing.assert_array_equal(out, RGB)
    out[0, 0, 0] ^= 0xFF
    assert msg.data[0] == RGB[0, 0, 0] ^ 0xFF


@pytest.mark.parametrize('encoding', ['bayer_rggb8', '16UC1', 'yuv422', ''])
def test_unsupported_encoding_names_it_and_the_supported_ones(encoding):
    msg = make_image(RGB, 'rgb8')
    msg.encoding = encoding
    with pytest.raises(InputError, match=rf"unsupported image encoding '{encoding}'.*rgb8.*mono8"):
        image_msg_to_rgb(msg)


def test_data_shorter_than_height_times_step_is_rejected():
    msg = make_image(RGB, 'rgb8', pad=2)
    msg.data = msg.data[:-1]
    with pytest.raises(InputError, match=rf'{H * (W * 3 + 2) - 1} bytes, fewer than height\*step'):
        image_msg_to_rgb(msg)


def test_step_smaller_than_a_row_is_rejected():
    msg = make_image(RGB, 'rgb8')
    msg.step = W * 3 - 1
    with pytest.raises(InputError, match=rf'step {W * 3 - 1} is smaller than width\*bytes_per'):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize('field', ['width', 'height'])
def test_zero_size_is_rejected(field):
    msg = make_image(RGB, 'rgb8')
    setattr(msg, field, 0)
    with pytest.raises(InputError, match=rf'zero size.*{field}=0'):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize('fmt', ['png', 'bgr8; png compressed bgr8', 'PNG'])
def test_png_decodes_exactly_to_rgb(fmt):
    np.testing.assert_array_equal(compressed_msg_to_rgb(compressed(RGB, '.png', fmt)), RGB)


@pytest.mark.parametrize('fmt', ['jpeg', 'rgb8; jpeg compressed bgr8', 'jpg'])
def test_jpeg_decodes_to_rgb_within_codec_error(fmt):
    rgb = smooth_rgb()
    out = compressed_msg_to_rgb(compressed(rgb, '.jpg', fmt))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert err.mean() < 2.0 and err.max() <= 16, (err.mean(), err.max())


def test_grey_png_becomes_rgb():
    out = compressed_msg_to_rgb(compressed(GREY, '.png', 'mono8; png compressed mono8'))
    np.testing.assert_array_equal(out, np.repeat(GREY[..., None], 3, axis=2))


def _headers_then_garbage(ext):
    """A real file's headers, size included, then bytes no decoder reads."""
    data = bytes(compressed(smooth_rgb(48, 64), ext, 'x').data)
    if ext == '.png':
        return data[:33] + b'\0' * 40   # signature + IHDR chunk
    i = 2
    while data[i + 1] not in (0xC0, 0xC2):   # to the end of the start-of-frame segment
        i += 2 + int.from_bytes(data[i + 2:i + 4], 'big')
    return data[:i + 2 + int.from_bytes(data[i + 2:i + 4], 'big')] + b'\0' * 40


@pytest.mark.parametrize('fmt,data,reason', [
    ('jpeg', b'\xff\xd8\xff' + b'\0' * 20, 'no image size in its header'),
    ('png', b'\x89PNG\r\n\x1a\n' + b'\0' * 20, 'no image size in its header'),
    ('jpeg', _headers_then_garbage('.jpg'), 'the decoder'),
    ('png', _headers_then_garbage('.png'), 'the decoder')])
def test_undecodable_compressed_data_is_rejected(fmt, data, reason):
    # Without a size in the header nothing is decoded; with one, the decoder has the last word.
    size = compressed_size(np.frombuffer(data, np.uint8), fmt)
    assert size == (None if reason.startswith('no image size') else (64, 48))
    if reason == 'the decoder':
        reason = r'\(\d+ bytes, format'
    with pytest.raises(InputError, match=f'could not decode .* as {fmt}.*{reason}'):
        compressed_msg_to_rgb(CompressedImage(format=fmt, data=data))


NEITHER = 'data that is neither jpeg nor png'


@pytest.mark.parametrize('ext,fmt,carried', [('.jpg', 'png', 'jpeg data'),
                                             ('.png', 'jpeg', 'png data'),
                                             ('.bmp', 'png', NEITHER),
                                             ('.tiff', 'jpeg', NEITHER)])
def test_data_that_is_not_what_its_format_says_is_not_decoded(ext, fmt, carried):
    # Found by fuzzing: a 5 KB JPEG claiming 10000x10000, labelled png, skipped the size check
    # (no PNG header to read) and decoded to 100 MP. It is refused before decoding now.
    small = compressed(smooth_rgb(48, 64), ext, 'png' if ext == '.png' else 'jpeg')
    if ext == '.jpg':
        small = _with_header_size(small, 10000, 10000)
    msg = CompressedImage(format=fmt, data=small.data)
    with pytest.raises(InputError, match=f"says {fmt}, but it carries {carried}"):
        compressed_msg_to_rgb(msg)


def test_a_jpeg_whose_header_gives_no_size_is_not_decoded():
    # libjpeg skips garbage between markers, so a frame header this parser cannot reach could
    # still decode to any size: without a size read, nothing is decoded.
    good = bytes(compressed(smooth_rgb(48, 64), '.jpg', 'jpeg').data)
    end_of_app0 = 4 + int.from_bytes(good[4:6], 'big')   # SOI, then APP0 and its length
    garbled = good[:end_of_app0] + b'\x00\x00' + good[end_of_app0:]
    with pytest.raises(InputError, match='no image size in its header'):
        compressed_msg_to_rgb(CompressedImage(format='jpeg', data=garbled))


def _with_header_size(msg, width, height):
    """The same compressed bytes with the header claiming another size (a small file that
    would decode to a huge frame: the check must come before decoding)."""
    data = bytearray(msg.data)
    if msg.format == 'png':
        data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    else:
        i = 2
        while data[i + 1] not in (0xC0, 0xC2):
            i += 2 + int.from_bytes(data[i + 2:i + 4], 'big')
        data[i + 5:i + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return CompressedImage(format=msg.format, data=bytes(data))


@pytest.mark.parametrize('ext,fmt', [('.png', 'png'), ('.jpg', 'jpeg')])
def test_compressed_headers_give_the_size_without_decoding(ext, fmt):
    msg = compressed(smooth_rgb(48, 64), ext, fmt)
    assert compressed_size(np.frombuffer(msg.data, np.uint8), fmt) == (64, 48)
    big = _with_header_size(msg, 12000, 12000)
    assert compressed_size(np.frombuffer(big.data, np.uint8), fmt) == (12000, 12000)


@pytest.mark.parametrize('ext,fmt', [('.png', 'png'), ('.jpg', 'jpeg')])
def test_a_compressed_frame_too_large_to_decode_is_refused_before_decoding(ext, fmt):
    big = _with_header_size(compressed(smooth_rgb(48, 64), ext, fmt), 12000, 12000)
    with pytest.raises(InputError, match=r'12000x12000 = 144 MP; frames over 36 MP'):
        compressed_msg_to_rgb(big)


def test_a_raw_frame_over_the_pixel_limit_is_refused():
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    msg = Image(height=side, width=side, encoding='mono8', step=side, data=b'\0' * 16)
    with pytest.raises(InputError, match='MP are refused'):
        image_msg_to_rgb(msg)
    with pytest.raises(InputError, match='MP are refused'):
        ImageConverter().to_rgb(msg)


def test_unreadable_compressed_headers_give_no_size():
    for data, fmt in ((b'\x89PNG', 'png'), (b'not a jpeg', 'jpeg'), (b'\xff\xd8\xff', 'jpeg')):
        assert compressed_size(np.frombuffer(data, np.uint8), fmt) is None


def test_empty_compressed_data_is_rejected():
    with pytest.raises(InputError, match='no data'):
        compressed_msg_to_rgb(CompressedImage(format='jpeg', data=b''))


@pytest.mark.parametrize('fmt', ['tiff', '', 'bgr8; webp compressed bgr8'])
def test_unknown_compressed_format_is_rejected(fmt):
    msg = compressed(RGB, '.png', 'png')
    msg.format = fmt
    with pytest.raises(InputError, match=rf"unknown compressed image format '{fmt}'.*jpeg, png"):
        compressed_msg_to_rgb(msg)


def test_compressed_depth_is_rejected_as_not_a_camera_image():
    msg = compressed(GREY, '.png', '16UC1; compressedDepth png')
    with pytest.raises(InputError, match='compressedDepth'):
        compressed_msg_to_rgb(msg)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_fields_fill_a_real_image_that_reads_back_the_same(encoding):
    fields = rgb_to_image_msg_fields(RGB, encoding)
    assert isinstance(fields['data'], bytes) and fields['is_bigendian'] == 0
    assert (fields['height'], fields['width'], fields['step']) == (H, W, W * 3)
    wire = RGB if encoding == 'rgb8' else RGB[..., ::-1]
    assert fields['data'] == np.ascontiguousarray(wire).tobytes()
    np.testing.assert_array_equal(image_msg_to_rgb(Image(**fields)), RGB)


def test_fields_reject_what_they_cannot_publish():
    with pytest.raises(InputError, match="cannot publish encoding 'mono8'.*rgb8, bgr8"):
        rgb_to_image_msg_fields(RGB, 'mono8')
    with pytest.raises(InputError, match=r'\(H, W, 3\) uint8.*got uint8 \(5, 7\)'):
        rgb_to_image_msg_fields(GREY)
    with pytest.raises(InputError, match='got float32'):
        rgb_to_image_msg_fields(RGB.astype(np.float32))


def _fake_cv_bridge(monkeypatch, imgmsg_to_cv2):
    module = types.ModuleType('cv_bridge')
    module.CvBridge = type('CvBridge', (), {'imgmsg_to_cv2': imgmsg_to_cv2})
    monkeypatch.setitem(sys.modules, 'cv_bridge', module)


def _check_converts(conv):
    pixels, expected = encoded('bgra8')
    np.testing.assert_array_equal(conv.to_rgb(make_image(pixels, 'bgra8', pad=4)), expected)
    np.testing.assert_array_equal(conv.to_rgb(compressed(RGB, '.png', 'png')), RGB)
    with pytest.raises(InputError, match='unsupported image encoding'):
        conv.to_rgb(make_image(RGB, 'yuv422'))


def test_converter_without_cv_bridge_falls_back_and_converts(monkeypatch):
    monkeypatch.setitem(sys.modules, 'cv_bridge', None)  # as here: not installed
    conv = ImageConverter()
    assert conv.backend == 'vla_edge'
    _check_converts(conv)


def _raises(self, msg, desired_encoding='passthrough'):
    raise AttributeError("module 'numpy' has no attribute 'float'")  # PyPI cv-bridge, numpy 2


def _swaps(self, msg, desired_encoding='passthrough'):
    return image_msg_to_rgb(msg)[..., ::-1]  # works, but silently wrong


@pytest.mark.parametrize('broken', [_raises, _swaps])
def test_converter_falls_back_when_cv_bridge_fails_its_self_test(monkeypatch, broken):
    _fake_cv_bridge(monkeypatch, broken)
    conv = ImageConverter()
    assert conv.backend == 'vla_edge'
    _check_converts(conv)


def test_converter_uses_a_working_cv_bridge_with_the_same_errors(monkeypatch):
    calls = []

    def works(self, msg, desired_encoding='passthrough'):
        calls.append(msg.encoding)
        if msg.encoding == 'bgra8':
            raise ValueError('bridge failure')
        return image_msg_to_rgb(msg)

    _fake_cv_bridge(monkeypatch, works)
    conv = ImageConverter()
    assert conv.backend == 'cv_bridge' and calls == ['rgb8']  # the self-test
    np.testing.assert_array_equal(conv.to_rgb(make_image(RGB, 'rgb8', pad=1)), RGB)
    assert calls == ['rgb8', 'rgb8']
    with pytest.raises(InputError, match='unsupported image encoding'):
        conv.to_rgb(make_image(RGB, 'yuv422'))
    with pytest.raises(InputError, match='fewer than height'):
        conv.to_rgb(Image(height=H, width=W, encoding='rgb8', step=W * 3, data=b'\0' * 3))
    with pytest.raises(InputError, match='cv_bridge could not convert the image: bridge failure'):
        conv.to_rgb(make_image(encoded('bgra8')[0], 'bgra8'))
    assert calls == ['rgb8', 'rgb8', 'bgra8']
    assert ImageConverter(prefer_cv_bridge=False).backend == 'vla_edge'


def test_default_converter_converts_correctly_with_whatever_backend_is_installed():
    conv = ImageConverter()
    assert conv.backend in ('cv_bridge', 'vla_edge')
    for encoding in ('rgb8', 'bgr8', 'rgba8', 'mono8'):
        pixels, expected = encoded(encoding)
        np.testing.assert_array_equal(conv.to_rgb(make_image(pixels, encoding, pad=2)), expected)
    np.testing.assert_array_equal(conv.to_rgb(compressed(RGB, '.png', 'png')), RGB)
