"""Tests for safe still-image decoding; every image is generated here, none is committed."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from facelead.biometrics.decode import DecodedImage, DecodeLimits, decode_image, sniff_format
from facelead.errors import ConfigurationError, ImageError

RED = (255, 0, 0)
GREY = (128, 128, 128)


def _save(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def _marked(width: int = 40, height: int = 20) -> Image.Image:
    """Grey image with a red block in the top-left corner, to follow rotations."""
    im = Image.new("RGB", (width, height), GREY)
    im.paste(RED, (0, 0, 8, 8))
    return im


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _refused(data: bytes, code: str, limits: DecodeLimits | None = None) -> ImageError:
    with pytest.raises(ImageError) as info:
        decode_image(data, limits or DecodeLimits())
    assert info.value.code == code, info.value.message
    assert "\n" not in info.value.message
    return info.value


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _px(result: DecodedImage, y: int, x: int) -> tuple[int, ...]:
    """Plain ints: uint8 arithmetic in pytest.approx would wrap around."""
    return tuple(int(v) for v in result.pixels[y, x])


def _check_output(result: DecodedImage) -> None:
    assert result.pixels.dtype == np.uint8
    assert result.pixels.ndim == 3 and result.pixels.shape[2] == 3
    assert result.pixels.flags.c_contiguous


# --- accepted formats -----------------------------------------------------------------


def test_jpeg_exif_orientation_6_rotates_clockwise() -> None:
    data = _save(_marked(40, 20), "JPEG", quality=95, exif=_exif(6))
    result = decode_image(data)
    _check_output(result)
    assert result.format == "jpeg"
    assert result.exif_orientation == 6
    assert result.pixels.shape == (40, 20, 3)  # width and height swapped
    # Rotating 90° clockwise moves the top-left mark to the top-right corner.
    assert _px(result, 2, 17) == pytest.approx(RED, abs=30)
    assert _px(result, 2, 2) == pytest.approx(GREY, abs=30)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    data = _save(_marked(30, 14), "PNG", exif=_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    result = decode_image(data)
    assert result.exif_orientation == orientation
    np.testing.assert_array_equal(result.pixels, expected)
    assert result.pixels.flags.c_contiguous and result.pixels.flags.writeable


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    data = _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    result = decode_image(data)
    assert result.original_mode == "CMYK"
    assert _px(result, 8, 8) == pytest.approx(RED, abs=10)


def test_16_bit_grayscale_png_keeps_absolute_scale() -> None:
    values = np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16)
    result = decode_image(_save(Image.fromarray(values), "PNG"))
    assert result.original_mode.startswith("I;16")
    expected = np.array([0, 0, 1, 128, 255], dtype=np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(result.pixels[0, :, channel], expected)


def test_16_bit_rgb_png_is_reduced_to_8_bit() -> None:
    bgr = np.zeros((4, 5, 3), dtype=np.uint16)
    bgr[...] = (256, 32768, 65535)  # cv2 order: blue, green, red
    ok, buf = cv2.imencode(".png", bgr)
    assert ok
    data = buf.tobytes()
    assert data[24] == 16  # IHDR bit depth: really a 48-bit PNG
    result = decode_image(data)
    assert result.pixels.shape == (4, 5, 3)
    assert _px(result, 0, 0) == (255, 128, 1)


def test_grayscale_is_replicated_to_three_channels() -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    result = decode_image(_save(Image.fromarray(gray, "L"), "PNG"))
    assert result.original_mode == "L"
    for channel in range(3):
        np.testing.assert_array_equal(result.pixels[..., channel], gray)


def test_one_bit_image_is_black_and_white() -> None:
    im = Image.new("1", (8, 8), 0)
    im.paste(1, (0, 0, 4, 8))
    result = decode_image(_save(im, "PNG"))
    assert result.original_mode == "1"
    assert _px(result, 0, 0) == (255, 255, 255)
    assert _px(result, 0, 7) == (0, 0, 0)


def test_rgba_is_composited_over_white() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 0, 0)
    rgba[..., 3] = [[0, 255, 128], [0, 255, 128]]
    result = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert result.original_mode == "RGBA"
    assert _px(result, 0, 0) == (255, 255, 255)  # transparent -> white, not black
    assert _px(result, 0, 1) == (200, 0, 0)
    assert _px(result, 0, 2) == pytest.approx((228, 127, 127), abs=1)


def test_la_is_composited_over_white() -> None:
    la = np.zeros((1, 2, 2), dtype=np.uint8)
    la[0, 0] = (0, 0)  # black, fully transparent
    la[0, 1] = (0, 255)  # black, opaque
    result = decode_image(_save(Image.fromarray(la, "LA"), "PNG"))
    assert result.original_mode == "LA"
    assert _px(result, 0, 0) == (255, 255, 255)
    assert _px(result, 0, 1) == (0, 0, 0)


def test_palette_with_transparency_is_composited_over_white() -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    im.paste(1, (2, 0, 4, 4))
    result = decode_image(_save(im, "PNG", transparency=0))
    assert result.original_mode == "P"
    assert _px(result, 0, 0) == (255, 255, 255)
    assert _px(result, 0, 3) == RED


@pytest.mark.parametrize(
    ("fmt", "expected_format", "options"),
    [
        ("BMP", "bmp", {}),
        ("TIFF", "tiff", {}),
        ("TIFF", "tiff", {"compression": "tiff_lzw"}),
        ("WEBP", "webp", {"lossless": True}),
        ("PNG", "png", {}),
    ],
)
def test_lossless_formats_round_trip(
    fmt: str, expected_format: str, options: dict[str, object]
) -> None:
    im = _marked(12, 9)
    result = decode_image(_save(im, fmt, **options))
    _check_output(result)
    assert result.format == expected_format
    assert result.original_mode == "RGB"
    assert result.exif_orientation == 1
    np.testing.assert_array_equal(result.pixels, np.asarray(im))


def test_lossy_still_webp() -> None:
    result = decode_image(_save(Image.new("RGB", (16, 16), RED), "WEBP", quality=90))
    assert result.format == "webp"
    assert _px(result, 8, 8) == pytest.approx(RED, abs=10)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", np.array([[0, 256, 65535]], dtype=np.int32), [0, 1, 255]),
        ("F", np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255]),
        ("F", np.array([[-10.0, 0.0, 10.0]], dtype=np.float32), [0, 128, 255]),
    ],
)
def test_wide_tiff_modes_are_scaled(mode: str, values: np.ndarray, expected: list[int]) -> None:
    result = decode_image(_save(Image.fromarray(values, mode), "TIFF"))
    assert result.original_mode == mode
    np.testing.assert_array_equal(result.pixels[0, :, 0], expected)


def test_multi_picture_jpeg_decodes_its_primary_image() -> None:
    # Cameras embed previews and depth maps as MPO; that is still one photograph.
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (8, 8), GREY)
    data = _save(first, "MPO", save_all=True, append_images=[second], quality=95)
    result = decode_image(data)
    assert result.format == "jpeg"
    assert result.pixels.shape == (16, 16, 3)


# --- refusals ---------------------------------------------------------------------------


def test_zero_bytes() -> None:
    _refused(b"", "empty_file")


def test_over_max_bytes() -> None:
    data = _save(_marked(), "PNG")
    _refused(data, "file_too_large", DecodeLimits(max_bytes=len(data) - 1))
    assert decode_image(data, DecodeLimits(max_bytes=len(data))).format == "png"


def test_truncated_jpeg() -> None:
    data = _save(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG", quality=90)
    _refused(data[: len(data) // 2], "corrupt_image")
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_truncated_png() -> None:
    data = _save(Image.effect_noise((64, 64), 50).convert("RGB"), "PNG")
    _refused(data[: len(data) // 2], "corrupt_image")


def test_png_with_bad_header_crc() -> None:
    data = bytearray(_save(_marked(), "PNG"))
    data[29] ^= 0xFF
    _refused(bytes(data), "corrupt_image")


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"Good morning, this starts with the MPEG-TS sync byte",
        b"BMW 3 series registration plate ABC123 seen at 10:15",
        b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>",
        b"  <html><body><img src='face.jpg'></body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        b"PK\x03\x04\x14\x00\x00\x00",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",
        b"data:image/png;base64,iVBORw0KGgo=",
    ],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    _refused(data, "unsupported_format")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41",
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ",
        b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat",
        b"RIFF\x00\x10\x00\x00AVI LIST",
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm",
        b"FLV\x01\x05\x00\x00\x00\x09",
        b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c",
        b"\x00\x00\x01\xba\x44\x00\x04\x00",
        (b"\x47\x40\x00\x10" + bytes(184)) * 3,
    ],
    ids=["mp4", "mov", "old-mov", "avi", "webm", "flv", "asf", "mpeg-ps", "mpeg-ts"],
)
def test_videos_are_refused(data: bytes) -> None:
    _refused(data, "video_not_allowed")


@pytest.mark.parametrize(
    "data",
    [
        b"http://example.org/face.jpg",
        b"rtsp://10.0.0.5/stream1",
        b"  HTTPS://cam/live",
        b"rtmp://x",
    ],
)
def test_urls_are_refused(data: bytes) -> None:
    _refused(data, "url_not_allowed")


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), GREY)]


def test_animated_gif() -> None:
    first, *rest = _frames()
    _refused(_save(first, "GIF", save_all=True, append_images=rest, loop=0), "animated_not_allowed")


def test_single_frame_gif_is_unsupported() -> None:
    _refused(_save(_frames()[0], "GIF"), "unsupported_format")


def test_apng() -> None:
    first, *rest = _frames()
    data = _save(first, "PNG", save_all=True, append_images=rest)
    assert b"acTL" in data
    _refused(data, "animated_not_allowed")


def test_animated_webp() -> None:
    first, *rest = _frames()
    _refused(_save(first, "WEBP", save_all=True, append_images=rest), "animated_not_allowed")


def test_multi_page_tiff() -> None:
    first, *rest = _frames()
    _refused(_save(first, "TIFF", save_all=True, append_images=rest), "multi_frame_not_allowed")


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat + _png_chunk(b"IEND", b"")


def test_png_header_bomb_is_refused_before_decoding() -> None:
    data = _png_claiming(100_000, 100_000)
    start = time.perf_counter()
    error = _refused(data, "too_many_pixels")
    assert time.perf_counter() - start < 0.5
    assert "100000x100000" in error.message


def test_one_side_over_max_side() -> None:
    _refused(_png_claiming(30_000, 10), "too_many_pixels")
    _refused(_png_claiming(100, 100), "too_many_pixels", DecodeLimits(max_side=99))
    _refused(_png_claiming(100, 100), "too_many_pixels", DecodeLimits(max_pixels=9_999))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01",
        b"BM" + bytes(12) + struct.pack("<Iii", 40, 50_000, -50_000) + bytes(40),
        b"II*\x00\x08\x00\x00\x00\x02\x00"
        + struct.pack("<HHII", 256, 4, 1, 50_000)
        + struct.pack("<HHII", 257, 4, 1, 50_000),
        b"RIFF\x20\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
        + (16383).to_bytes(3, "little") * 2,
    ],
    ids=["jpeg", "bmp", "tiff", "webp"],
)
def test_header_bombs_in_every_format(data: bytes) -> None:
    _refused(data, "too_many_pixels")


def test_pillow_bomb_error_is_mapped_when_limits_exceed_pillows() -> None:
    generous = DecodeLimits(max_pixels=10**12, max_side=10**6)
    _refused(_png_claiming(100_000, 100_000), "too_many_pixels", generous)


def test_jpeg_with_padding_between_segments_decodes() -> None:
    data = _save(_marked(), "JPEG", quality=95)
    end_of_app0 = 4 + struct.unpack(">H", data[4:6])[0]
    padded = data[:end_of_app0] + b"\x00\x00" + data[end_of_app0:]
    assert decode_image(padded).pixels.shape == (20, 40, 3)


def test_refuses_to_run_when_truncated_images_are_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigurationError):
        decode_image(_save(_marked(), "PNG"))


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options", "expected"),
    [
        ("JPEG", {}, "jpeg"),
        ("PNG", {}, "png"),
        ("BMP", {}, "bmp"),
        ("TIFF", {}, "tiff"),
        ("WEBP", {}, "webp"),
    ],
)
def test_sniff_format(fmt: str, options: dict[str, object], expected: str) -> None:
    assert sniff_format(_save(_marked(), fmt, **options)) == expected


def test_big_endian_tiff_is_sniffed() -> None:
    assert sniff_format(b"MM\x00*\x00\x00\x00\x08") == "tiff"


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_image_error(data: bytes) -> None:
    try:
        result = decode_image(data)
    except ImageError:
        return
    _check_output(result)


_SEEDS = [
    _save(_marked(), "JPEG"),
    _save(_marked(), "PNG"),
    _save(_marked(), "BMP"),
    _save(_marked(), "TIFF"),
    _save(_marked(), "WEBP"),
    _save(_marked(), "WEBP", lossless=True),
]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about broken TIFF tags
@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(_SEEDS),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 255)), max_size=8),
)
def test_damaged_real_images_only_raise_image_error(
    seed: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(seed[: max(1, len(seed) - cut)])
    for position, mask in flips:
        data[position % len(data)] ^= mask
    try:
        result = decode_image(bytes(data))
    except ImageError:
        return
    _check_output(result)
