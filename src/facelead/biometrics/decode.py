"""Safe decoding of one still probe or gallery photo into 8-bit RGB pixels.

Uploaded bytes are hostile until proven otherwise, and policy allows still
images only (DESIGN.md principle 4). So the format is taken from magic bytes,
never from a name or a declared MIME type; video, animation, multi-page files
and URLs are refused with their own codes so auditors can count attempts; and
every format's dimensions are read by the small parsers below *before* Pillow
sees the bytes, so a decompression bomb is refused without allocating.

Pillow's global ``Image.MAX_IMAGE_PIXELS`` is deliberately left untouched:
other code in the process shares it, and our own header check always runs
first. If a caller's limits exceed Pillow's, Pillow's ``DecompressionBombError``
is still mapped to ``too_many_pixels``. ``ImageFile.LOAD_TRUNCATED_IMAGES``
must stay False, otherwise truncated files would decode as grey-padded
images; decoding refuses to run if someone enabled it.

Every refusal is an :class:`~facelead.errors.ImageError` whose ``code`` is one
of: ``empty_file``, ``file_too_large``, ``url_not_allowed``,
``video_not_allowed``, ``animated_not_allowed``, ``multi_frame_not_allowed``,
``unsupported_format``, ``too_many_pixels``, ``corrupt_image``.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, UnidentifiedImageError

from facelead.biometrics.types import RGBImage
from facelead.errors import ConfigurationError, ImageError

ALLOWED_FORMATS: tuple[str, ...] = ("jpeg", "png", "bmp", "tiff", "webp")

_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "tiff": "TIFF", "webp": "WEBP"}
_ORIENTATION_TAG = 0x0112
_URL_RE = re.compile(rb"^[a-z][a-z0-9+.\-]{1,15}://")

# ISO-BMFF major brands that are still-image (HEIF/AVIF) rather than video.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"mif2", b"msf1"}
    | {b"avif", b"avis", b"avio"}
)
# QuickTime files written before ``ftyp`` existed start with one of these atoms.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
# DIB header sizes: checking one keeps text starting with "BM" away from the BMP decoder.
_BMP_HEADER_SIZES = frozenset(struct.pack("<I", n) for n in (12, 40, 52, 56, 64, 108, 124))
_VIDEO_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (b"FLV\x01", "Flash video"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV"),
    (b"\x00\x00\x01\xba", "MPEG program stream"),
    (b"\x00\x00\x01\xb3", "MPEG video"),
    (b".RMF", "RealMedia"),
    (b"DKIF", "IVF (VP8/VP9) video"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an icon file"),
    (b"%!PS", "PostScript"),
)


@dataclass(frozen=True)
class DecodeLimits:
    """Resource ceilings, passed in so biometrics never reads configuration."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 20_000

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.max_side) <= 0:
            raise ValueError("decode limits must be positive")


@dataclass(frozen=True)
class DecodedImage:
    """Pixels plus the provenance facts an audit record or quality gate needs."""

    pixels: RGBImage
    format: str
    original_mode: str
    exif_orientation: int
    sha256: str


def _refuse(message: str, code: str) -> ImageError:
    return ImageError(message, code=code)


def _riff_kind(data: bytes) -> str:
    form = data[8:12]
    if form == b"WEBP":
        return "webp"
    if form in (b"AVI ", b"AVIX"):
        raise _refuse("AVI video files are not allowed; submit a still image", "video_not_allowed")
    raise _refuse("RIFF file is not a WebP image", "unsupported_format")


def _isobmff_kind(data: bytes) -> None:
    brand = data[8:12]
    if data[4:8] == b"ftyp" and brand in _IMAGE_BRANDS:
        name = brand.decode("ascii", "replace").strip()
        raise _refuse(f"HEIF/AVIF image ({name}) is not supported", "unsupported_format")
    raise _refuse("MP4/QuickTime video files are not allowed", "video_not_allowed")


def _is_transport_stream(data: bytes) -> bool:
    """Sync bytes every 188 (TS) or 192 (M2TS) bytes; one ``G`` alone is just text."""
    if len(data) > 188 and data[0] == 0x47 and data[188] == 0x47:
        return True
    return len(data) > 196 and data[4] == 0x47 and data[196] == 0x47


def _refuse_non_image(data: bytes) -> ImageError:
    """Name what the bytes look like, so the refusal tells the user what went wrong."""
    for magic, name in _VIDEO_MAGIC:
        if data.startswith(magic):
            return _refuse(
                f"{name} files are not allowed; submit a still image", "video_not_allowed"
            )
    if _is_transport_stream(data):
        return _refuse("MPEG transport streams are not allowed", "video_not_allowed")
    if data.startswith(b"OggS"):
        if b"\x80theora" in data[:512] or b"\x01video" in data[:512]:
            return _refuse("Ogg video files are not allowed", "video_not_allowed")
        return _refuse("Ogg media is not an image", "unsupported_format")
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return _refuse(f"{name} is not a supported image", "unsupported_format")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return _refuse("an HTML page is not an image", "unsupported_format")
    if head.startswith((b"<svg", b"<?xml")):
        return _refuse("SVG/XML documents are not supported images", "unsupported_format")
    allowed = ", ".join(ALLOWED_FORMATS)
    return _refuse(f"not a recognised image; allowed formats: {allowed}", "unsupported_format")


def _skip_gif_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


def _gif_frame_count(data: bytes, stop: int = 2) -> int:
    """Walk GIF blocks without LZW decoding; Pillow's ``n_frames`` decodes every frame."""
    if len(data) < 13:
        return 0
    pos = 13
    if data[10] & 0x80:
        pos += 3 * (2 << (data[10] & 7))
    frames = 0
    while pos < len(data) and frames < stop:
        block = data[pos]
        if block == 0x21:  # extension: label byte, then sub-blocks
            pos = _skip_gif_sub_blocks(data, pos + 2)
        elif block == 0x2C and pos + 10 <= len(data):  # image descriptor
            frames += 1
            flags = data[pos + 9]
            pos += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
            pos = _skip_gif_sub_blocks(data, pos + 1)  # +1: LZW minimum code size
        else:  # trailer or garbage
            break
    return frames


def _refuse_gif(data: bytes) -> ImageError:
    if _gif_frame_count(data) > 1:
        return _refuse(
            "animated GIFs are not allowed; submit a still image", "animated_not_allowed"
        )
    return _refuse("GIF is not a supported still-image format", "unsupported_format")


def sniff_format(data: bytes) -> str:
    """Identify an allowed format from magic bytes alone, refusing everything else.

    File names and MIME types are attacker-controlled, so only content counts.
    """
    if not data:
        raise _refuse("the file is empty", "empty_file")
    if _URL_RE.match(data[:64].lstrip().lower()):
        raise _refuse("URLs and streams are not accepted; upload the image file", "url_not_allowed")
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"BM") and len(data) >= 26 and data[14:18] in _BMP_HEADER_SIZES:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"RIFF") and len(data) >= 12:
        return _riff_kind(data)
    if data[4:8] == b"ftyp" or data[4:8] in _QUICKTIME_ATOMS:
        _isobmff_kind(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        raise _refuse_gif(data)
    raise _refuse_non_image(data)


def _corrupt(fmt: str, what: str = "header") -> ImageError:
    return _refuse(f"the {fmt.upper()} {what} is damaged or truncated", "corrupt_image")


def _png_header(data: bytes) -> tuple[int, int]:
    """IHDR size, and refuse APNG (an ``acTL`` chunk before the first IDAT)."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _corrupt("png")
    if struct.unpack(">I", data[29:33])[0] != _crc32(data[12:29]):
        raise _corrupt("png")
    width, height = struct.unpack(">II", data[16:24])
    pos = 33
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL":
            raise _refuse("animated PNGs are not allowed", "animated_not_allowed")
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return int(width), int(height)


def _crc32(chunk: bytes) -> int:
    return zlib.crc32(chunk) & 0xFFFFFFFF


def _jpeg_header(data: bytes) -> tuple[int, int]:
    """Size from the first SOF marker; SOS or EOI before it means a broken file.

    Stray bytes between segments are skipped, as libjpeg does, so real-world
    camera files with padding are not refused.
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:  # stray padding between segments: libjpeg skips it too
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            pos += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return int(width), int(height)
        if marker in (0xD9, 0xDA):
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    raise _corrupt("jpeg")


def _bmp_header(data: bytes) -> tuple[int, int]:
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))


def _tiff_header(data: bytes) -> tuple[int, int]:
    """ImageWidth/ImageLength from the first IFD (tags 256 and 257)."""
    order = "<" if data.startswith(b"II") else ">"
    try:
        offset = struct.unpack(order + "I", data[4:8])[0]
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        size: dict[int, int] = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257) and kind in (3, 4):
                fmt = order + ("H" if kind == 3 else "I")
                size[tag] = struct.unpack(fmt, entry[8 : 10 if kind == 3 else 12])[0]
        return int(size[256]), int(size[257])
    except (struct.error, KeyError):
        raise _corrupt("tiff") from None


def _webp_header(data: bytes) -> tuple[int, int]:
    """Canvas size from VP8X/VP8/VP8L; refuse the VP8X animation flag."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        if data[20] & 0x02:
            raise _refuse("animated WebP images are not allowed", "animated_not_allowed")
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise _corrupt("webp")


_HEADER_READERS = {
    "png": _png_header,
    "jpeg": _jpeg_header,
    "bmp": _bmp_header,
    "tiff": _tiff_header,
    "webp": _webp_header,
}


def _check_size(width: int, height: int, fmt: str, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0:
        raise _corrupt(fmt)
    if width > limits.max_side or height > limits.max_side:
        raise _refuse(
            f"image is {width}x{height}; the longest side allowed is {limits.max_side}",
            "too_many_pixels",
        )
    if width * height > limits.max_pixels:
        raise _refuse(
            f"image is {width}x{height} = {width * height} pixels; at most "
            f"{limits.max_pixels} are allowed",
            "too_many_pixels",
        )


def _composite_on_white(rgb: NDArray[np.uint8], alpha: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """White, not black: dark hair and skin keep their contrast against the background."""
    a = alpha.astype(np.uint32)[..., None]
    out = (rgb.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _gray_to_rgb(gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return np.repeat(gray[..., None], 3, axis=2)


def _wide_to_uint8(values: NDArray[np.generic], mode: str) -> NDArray[np.uint8]:
    """Map 16/32-bit and float samples to 8 bits without clipping the highlights.

    16-bit data keeps its absolute scale (``>> 8``) so exposure is not altered;
    only data outside the 16-bit or unit range is stretched by its own range.
    """
    if mode.startswith("I;16"):
        return (values.astype(np.uint16) >> 8).astype(np.uint8)
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(data.min()), float(data.max())
    if mode == "I" and low >= 0 and high <= 65535:
        return (data.astype(np.uint32) >> 8).astype(np.uint8)
    if mode == "F" and low >= 0 and high <= 1:
        return np.rint(data * 255).astype(np.uint8)
    if high <= low:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.rint((data - low) * (255 / (high - low))).astype(np.uint8)


def _to_rgb(im: Image.Image) -> NDArray[np.uint8]:
    """Normalise any Pillow mode to H x W x 3 uint8 RGB."""
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "1":
        im = im.convert("L")
    if im.mode.startswith("I") or im.mode == "F":
        return _gray_to_rgb(_wide_to_uint8(np.asarray(im), im.mode))
    if im.mode not in ("RGB", "RGBA", "L", "LA"):
        try:
            im = im.convert("RGB")
        except ValueError:
            raise _refuse(f"colour mode {mode} is not supported", "unsupported_format") from None
    arr = np.asarray(im)
    if im.mode == "L":
        return _gray_to_rgb(arr)
    if im.mode == "LA":
        return _composite_on_white(_gray_to_rgb(arr[..., 0]), arr[..., 1])
    if im.mode == "RGBA":
        return _composite_on_white(arr[..., :3], arr[..., 3])
    return arr


def _orient(pixels: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """EXIF orientation as numpy views (same result as ``ImageOps.exif_transpose``).

    Views cost nothing; the single copy happens when the result is made contiguous.
    """
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 7:
        return pixels[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels


def _exif_orientation(im: Image.Image) -> int:
    """1 when absent or invalid: a broken EXIF block must not reject a good photo."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _open(data: bytes, fmt: str, limits: DecodeLimits) -> Image.Image:
    """Lazy open restricted to one plugin, so no other Pillow decoder ever runs."""
    im = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    _check_size(im.width, im.height, fmt, limits)
    frames = int(getattr(im, "n_frames", 1))
    if fmt == "tiff" and frames > 1:
        raise _refuse(f"multi-page TIFF ({frames} pages) is not allowed", "multi_frame_not_allowed")
    if fmt in ("png", "webp") and frames > 1:
        raise _refuse(f"animated {fmt.upper()} images are not allowed", "animated_not_allowed")
    return im


def _decode_pixels(data: bytes, fmt: str, limits: DecodeLimits) -> tuple[RGBImage, str, int]:
    try:
        with _open(data, fmt, limits) as im:
            im.load()
            orientation = _exif_orientation(im)
            rgb = _to_rgb(im)
            mode = im.mode
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse("image has too many pixels to decode safely", "too_many_pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise _corrupt(fmt, "image data") from None
    except Exception:
        raise _corrupt(fmt, "image data") from None
    pixels = np.ascontiguousarray(_orient(rgb, orientation))
    if not pixels.flags.writeable:
        pixels = pixels.copy()
    return pixels, mode, orientation


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode one allowed still image, refusing with an ImageError code otherwise.

    Cheap checks run in order of cost: size of the upload, magic bytes, header
    dimensions and frame counts, and only then pixel decoding.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigurationError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is enabled; truncated images would be accepted"
        )
    if not isinstance(data, bytes):
        if not isinstance(data, bytearray | memoryview):
            raise _refuse("expected the image file's bytes", "unsupported_format")
        data = bytes(data)
    if not data:
        raise _refuse("the file is empty", "empty_file")
    if len(data) > limits.max_bytes:
        raise _refuse(
            f"the file is {len(data)} bytes; at most {limits.max_bytes} are allowed",
            "file_too_large",
        )
    fmt = sniff_format(data)
    try:
        width, height = _HEADER_READERS[fmt](data)
    except (struct.error, IndexError, ValueError):
        raise _corrupt(fmt) from None
    _check_size(width, height, fmt, limits)
    pixels, mode, orientation = _decode_pixels(data, fmt, limits)
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        original_mode=mode,
        exif_orientation=orientation,
        sha256=hashlib.sha256(data).hexdigest(),
    )
