"""A generated hostile-input corpus through enrolment, search and the API upload path.

Every input must end in its stable error code, leave the gallery, the probe
store and every table but the audit log exactly as they were (the refusal
itself is audited), and never cost more memory than its header admits.
The corpus is built here from a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.types import Message, Scope

from facelead.audit.chain import AuditRecord
from facelead.audit.export import export_lines
from facelead.biometrics.decode import DecodeLimits, decode_image
from facelead.domain.access import Actor
from facelead.domain.gallery import BookingRef, read_manifest
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import FaceLeadError, ImageError
from facelead.services import audit as audit_service
from facelead.services import identity as identity_service
from facelead.services.gallery import enroll_files, enroll_photo
from facelead.services.search import submit_search
from tests.conftest import Api, Installed, api_for, install

SEED = 20261128
AUDIT_TABLES = {"audit_events", "audit_checkpoints", "audit_head"}
SEARCH_FORM = {
    "case": "LA-HOSTILE-1",
    "purpose": "criminal-investigation",
    "justification": "Robbery of a pharmacy, suspect seen on the shop camera",
    "source": "cctv-still",
    "obtained_by": "DVR export by Det. Ruiz",
    "captured_by": "pharmacy CCTV",
}
FLIPPED = {"corrupt_image", "no_face", "unsupported_format"}
CERTIFIED = dt.date.today() + dt.timedelta(days=365)


# --- the corpus ---------------------------------------------------------------------------


def _picture(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """Smooth colour gradients: a real picture with no face in it."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _save(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int) -> bytes:
    """A grey PNG claiming ``side`` x ``side``: 32 MiB of zero rows compress to ~32 KiB."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(32 * 1024 * 1024), 9)
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def gif_bomb(side: int) -> bytes:
    """A GIF logical screen of ``side`` x ``side`` with one frame of LZW data."""
    head = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + bytes(6)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, side, side, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b"\x3b"


def tiff_bomb(side: int) -> bytes:
    """A little-endian TIFF whose first IFD claims ``side`` x ``side`` deflated pixels."""
    strip = zlib.compress(bytes(8 * 1024 * 1024), 9)
    entries = [
        (256, 4, 1, side),
        (257, 4, 1, side),
        (258, 3, 1, 8),
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),
        (278, 4, 1, side),
        (279, 4, 1, len(strip)),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + strip


def jpeg_huge_header() -> bytes:
    """A real JPEG whose SOF0 claims 65535 x 65535."""
    data = bytearray(_save(_picture(), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65535, 65535)
    return bytes(data)


def bit_flipped(data: bytes, flips: int, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        pos = rng.randrange(len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../etc/cron.d/evil", "* * * * * root sh -c 'id'\n")
    return out.getvalue()


def _frames(n: int) -> list[Image.Image]:
    return [_picture().rotate(30 * i) for i in range(n)]


def _animated(fmt: str) -> bytes:
    first, *rest = _frames(3)
    return _save(first, fmt, save_all=True, append_images=rest, duration=100, loop=0)


def _containers() -> dict[str, bytes]:
    mp4 = struct.pack(">I", 24) + b"ftypisom" + bytes(4) + b"isomiso2" + bytes(64)
    avi = b"RIFF" + struct.pack("<I", 200) + b"AVI LIST" + bytes(188)
    mkv = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01" + b"webm" + bytes(64)
    return {"container.mp4": mp4, "container.avi": avi, "container.mkv": mkv}


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    codes: frozenset[str]  # the refusal codes this input may end in (one, where deterministic)


def corpus() -> list[Hostile]:
    """Every hostile input with the code it must be refused with."""
    rng = random.Random(SEED)
    jpeg, png = _save(_picture(), "JPEG", quality=90), _save(_picture(), "PNG")
    pic = _picture()
    items: list[tuple[str, bytes, set[str]]] = [
        ("empty.jpg", b"", {"empty_file"}),
        ("truncated-header.jpg", jpeg[:20], {"corrupt_image"}),
        ("truncated-half.jpg", jpeg[: len(jpeg) // 2], {"corrupt_image"}),
        ("truncated-header.png", png[:30], {"corrupt_image"}),
        ("truncated-half.png", png[: len(png) // 2], {"corrupt_image"}),
        # A flipped bit in JPEG entropy data still decodes (to a face-less picture); one in
        # a PNG breaks a CRC or the zlib stream. Either way: refused, nothing written.
        (
            "bitflip-1.jpg",
            bit_flipped(jpeg, 8, rng),
            FLIPPED,
        ),
        (
            "bitflip-2.jpg",
            bit_flipped(jpeg, 64, rng),
            FLIPPED,
        ),
        (
            "bitflip-1.png",
            bit_flipped(png, 8, rng),
            FLIPPED,
        ),
        (
            "bitflip-2.png",
            bit_flipped(png, 64, rng),
            FLIPPED,
        ),
        ("bomb.png", png_bomb(100_000), {"too_many_pixels"}),
        ("bomb-area.png", png_bomb(19_000), {"too_many_pixels"}),
        ("bomb.gif", gif_bomb(65_535), {"unsupported_format"}),
        ("bomb.tif", tiff_bomb(100_000), {"too_many_pixels"}),
        ("huge-header.jpg", jpeg_huge_header(), {"too_many_pixels"}),
        ("polyglot-jpeg-zip.jpg", jpeg + _zip_bytes(), {"no_face"}),
        ("polyglot-png-html.png", png + b"<html><script>alert(1)</script></html>", {"no_face"}),
        ("zip-named.jpg", _zip_bytes(), {"unsupported_format"}),
        (
            "script.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            {"unsupported_format"},
        ),
        (
            "page.jpg",
            b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
            {"unsupported_format"},
        ),
        ("camera-url.jpg", b"rtsp://10.0.0.5/stream1", {"url_not_allowed"}),
        ("animated.gif", _animated("GIF"), {"animated_not_allowed"}),
        ("animated.webp", _animated("WEBP"), {"animated_not_allowed"}),
        ("animated.png", _animated("PNG"), {"animated_not_allowed"}),
        *((name, data, {"video_not_allowed"}) for name, data in _containers().items()),
        (
            "multipage.tif",
            _save(pic, "TIFF", save_all=True, append_images=[pic.rotate(90)]),
            {"multi_frame_not_allowed"},
        ),
        ("one-pixel.png", _save(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG"), {"no_face"}),
        ("one-pixel.jpg", _save(Image.new("RGB", (1, 1), (200, 150, 120)), "JPEG"), {"no_face"}),
        ("no-face.jpg", jpeg, {"no_face"}),
        ("no-face.webp", _save(pic, "WEBP"), {"no_face"}),
    ]
    return [Hostile(name, data, frozenset(codes)) for name, data, codes in items]


CORPUS = corpus()
BOMBS = [h for h in CORPUS if h.name.startswith(("bomb", "huge"))]


# --- a deployment shared by the module (models load once) --------------------------------


@dataclass
class World:
    api: Api
    records: Actor
    investigator: Actor


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    installed: Installed = install(tmp_path_factory.mktemp("hostile") / "home")
    installed.services.settings.daily_search_limit = 10_000
    api = api_for(installed)
    with api.client:
        api.call("ivy", "POST", "/cases", 201, json={"number": SEARCH_FORM["case"],
                                                       "offence_category": "robbery"})  # fmt: skip
        yield World(api, installed.login("rita"), installed.login("ivy"))
    installed.services.db.dispose()


def snapshot(world: World) -> dict[str, Any]:
    """Row counts of every table but the audit log's, and the files of both image stores."""
    services = world.api.services
    engine = services.db.engine
    with engine.connect() as conn:
        tables = sorted(set(sa.inspect(conn).get_table_names()) - AUDIT_TABLES)
        counts = {t: conn.scalar(sa.text(f'SELECT COUNT(*) FROM "{t}"')) for t in tables}
    files = {
        str(p.relative_to(services.settings.resolved_home))
        for folder in (services.settings.images_dir, services.settings.probes_dir)
        for p in folder.rglob("*")
        if p.is_file()
    }
    return {"rows": counts, "files": files}


def last_outcome(world: World) -> tuple[str, str]:
    with world.api.services.db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT action, outcome FROM audit_events ORDER BY seq DESC LIMIT 1")
        ).one()
    return str(row[0]), str(row[1])


def _request() -> SearchRequest:
    provenance = ProbeProvenance("cctv-still", "DVR export", "pharmacy CCTV", ())
    return SearchRequest("criminal-investigation", SEARCH_FORM["justification"], provenance)


def _refusal_code(world: World, path: str, item: Hostile) -> str:
    """Run ``item`` through one path; returns the refusal code it ended in."""
    services = world.api.services
    if path == "enrol":
        ref = BookingRef("S-HOSTILE", "S-HOSTILE-1", agency="LACRIS")
        with pytest.raises(FaceLeadError) as refused:
            enroll_photo(services, world.records, item.data, item.name, ref)
        return refused.value.code
    if path == "search":
        with pytest.raises(FaceLeadError) as refused:
            submit_search(services, world.investigator, SEARCH_FORM["case"], item.data, _request())
        return refused.value.code
    if path == "api-enrol":
        booking = {"subject_id": "S-HOSTILE", "booking_number": "S-HOSTILE-1"}
        files = {"image": (item.name, item.data, "image/jpeg")}
        response = world.api.client.post(
            "/api/v1/gallery/photos", data=booking, files=files, headers=world.api.auth("rita")
        )
    else:
        files = {"probe": (item.name, item.data, "image/jpeg")}
        response = world.api.client.post(
            "/api/v1/searches", data=SEARCH_FORM, files=files, headers=world.api.auth("ivy")
        )
    assert response.status_code in (415, 422), response.text[:300]
    assert response.headers["x-content-type-options"] == "nosniff"
    return str(response.json()["code"])


@pytest.mark.parametrize("path", ["enrol", "search", "api-enrol", "api-search"])
@pytest.mark.parametrize("item", CORPUS, ids=[h.name for h in CORPUS])
def test_hostile_input_is_refused_and_writes_nothing(
    world: World, item: Hostile, path: str
) -> None:
    before = snapshot(world)
    code = _refusal_code(world, path, item)
    assert code in item.codes, (item.name, path, code)
    assert snapshot(world) == before
    action, outcome = last_outcome(world)
    assert outcome == f"refused:{code}", (action, outcome)


def test_corpus_covers_the_brief() -> None:
    """The corpus is what the issue lists; a renamed or dropped case fails here."""
    names = {h.name for h in CORPUS}
    kinds = ("truncated", "bitflip", "bomb.png", "bomb.gif", "bomb.tif", "huge-header",
             "polyglot-jpeg-zip", "polyglot-png-html", "script.svg", "page.jpg", "animated.gif",
             "animated.webp", "animated.png", "container.mp4", "container.avi", "container.mkv",
             "multipage.tif", "one-pixel", "no-face", "empty")  # fmt: skip
    assert all(any(kind in name for name in names) for kind in kinds)
    assert len({h.data for h in CORPUS}) == len(CORPUS)  # no two cases collapsed into one


# --- bounded memory ------------------------------------------------------------------------

MEMORY_PROBE = """
import json, sys
from pathlib import Path
from facelead.biometrics.decode import decode_image
from facelead.errors import ImageError

def peak_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM")

decode_image(Path(sys.argv[1]).read_bytes())  # warm: every import and lazy init done
base, codes = peak_kib(), {}
for name in sys.argv[2:]:
    data = Path(name).read_bytes()
    try:
        decode_image(data)
        codes[Path(name).name] = "decoded"
    except ImageError as exc:
        codes[Path(name).name] = exc.code
    del data
print(json.dumps({"base_kib": base, "peak_kib": peak_kib(), "codes": codes}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_bombs_are_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Peak RSS of a fresh process, before and after decoding every bomb.

    The bombs would need from 1 GiB (19000^2 grey) to 30 GB (100000^2 RGB)
    decoded; the ceiling below is the size of the files themselves plus slack.
    """
    warm = tmp_path / "warm.png"
    warm.write_bytes(_save(_picture(), "PNG"))
    paths = []
    for bomb in BOMBS:
        paths.append(tmp_path / bomb.name)
        paths[-1].write_bytes(bomb.data)
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(warm), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["codes"] == {b.name: next(iter(b.codes)) for b in BOMBS}
    largest_file_kib = max(len(b.data) for b in BOMBS) // 1024
    assert report["peak_kib"] - report["base_kib"] < 4 * largest_file_kib + 16 * 1024, report


# --- a 2 GB upload --------------------------------------------------------------------------

GIB2 = 2 * 1024**3


def _asgi_post(
    app: FastAPI, headers: list[tuple[bytes, bytes]], body: Iterator[bytes]
) -> tuple[int, dict[str, Any], int]:
    """POST /api/v1/searches straight through ASGI, pulling the body lazily; counts reads."""
    reads = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/searches", "raw_path": b"/api/v1/searches",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), json.loads(payload), reads


def _two_gigabytes(chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """2 GiB of multipart body, generated lazily: nothing is held but one chunk."""
    yield (
        b'--b\r\nContent-Disposition: form-data; name="probe"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
    )
    block = b"\x00" * chunk
    for _ in range(GIB2 // chunk):
        yield block


def test_two_gigabyte_upload_is_refused_without_reading_it(world: World) -> None:
    app = world.api.client.app
    assert isinstance(app, FastAPI)
    auth = (b"authorization", f"Bearer {world.api.tokens['ivy']}".encode())
    form = (b"content-type", b"multipart/form-data; boundary=b")
    before = snapshot(world)
    # Declared: refused from the header alone, not one body read.
    declared = [form, auth, (b"content-length", str(GIB2).encode())]
    status, body, reads = _asgi_post(app, declared, _two_gigabytes())
    assert (status, body["code"], reads) == (413, "payload_too_large", 0)
    # Streamed without a length: refused at the first chunk past the limit.
    status, body, reads = _asgi_post(app, [form, auth], _two_gigabytes())
    limit_chunks = world.api.services.settings.max_upload_bytes // (1024 * 1024)
    assert (status, body["code"]) == (413, "payload_too_large")
    assert reads <= limit_chunks + 3 < GIB2 // (1024 * 1024)
    assert snapshot(world) == before


# --- file names: Unicode and path traversal -----------------------------------------------

NAMES = ["Ünïcødé-名前-👤.jpg", "..%2f..%2fetc%2fpasswd.jpg", "name\u202eevil.jpg", "CON.jpg"]


def test_manifest_names_never_reach_the_store(world: World, tmp_path: Path) -> None:
    """Manifest paths are resolved from the manifest's folder; a path that climbs out is read
    as the operator's own file would be, but only its base name is recorded and the store is
    content addressed, so no name chooses where anything is written."""
    folder = tmp_path / "batch"
    folder.mkdir()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"")
    for name in NAMES:
        (folder / name).write_bytes(b"")
    rows = ["path,subject_id,booking_number"]
    rows += [f"{name},S-N{i},S-N{i}-1" for i, name in enumerate(NAMES)]
    rows.append("../outside.jpg,S-OUT,S-OUT-1")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    refs = read_manifest(manifest)
    assert outside.resolve() in refs
    before = snapshot(world)
    services = world.api.services
    results = list(enroll_files(services, world.records, sorted(refs), refs))
    assert {r.code for r in results} == {"empty_file"} and len(results) == len(NAMES) + 1
    assert snapshot(world) == before
    with services.db.engine.connect() as conn:
        sources = conn.scalars(
            sa.text("SELECT details FROM audit_events ORDER BY seq DESC LIMIT :n"),
            {"n": len(results)},
        ).all()
    recorded = {json.loads(d)["source"] if isinstance(d, str) else d["source"] for d in sources}
    assert recorded == {*NAMES, "outside.jpg"}  # base names only, Unicode intact


def test_api_upload_names_are_made_safe(world: World) -> None:
    traversal = "../../../../etc/passwd\x00.jpg"
    booking = {"subject_id": "S-T", "booking_number": "S-T-1"}
    files = {"image": (traversal, b"", "image/jpeg")}
    response = world.api.client.post(
        "/api/v1/gallery/photos", data=booking, files=files, headers=world.api.auth("rita")
    )
    assert response.status_code == 415 and response.json()["code"] == "empty_file"
    with world.api.services.db.engine.connect() as conn:
        details = conn.scalar(sa.text("SELECT details FROM audit_events ORDER BY seq DESC LIMIT 1"))
    source = (json.loads(details) if isinstance(details, str) else details)["source"]
    assert "/" not in source and "\x00" not in source and "passwd" in source


# --- CSV formula injection ----------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def _record(i: int, actor: str) -> AuditRecord:
    return AuditRecord(
        seq=i, ts="2026-01-01T00:00:00Z", actor=actor, actor_id=None, role=None, agency=None,
        action="login", outcome="refused:unauthenticated", object_type=None, object_id=actor,
        case_number=None, purpose=None, client_address=None, interface="cli",
        details={"note": actor}, prev_hash="0" * 64, hash="1" * 64,
    )  # fmt: skip


def test_csv_export_defuses_formulas() -> None:
    import csv

    text = "".join(export_lines([_record(i, f) for i, f in enumerate(FORMULAS, 1)], "csv"))
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    for row, formula in zip(rows, FORMULAS, strict=True):
        cells = dict(zip(header, row, strict=True))
        shown = "\\r=1" if formula == "\r=1" else "'" + formula  # a bare CR would split the row
        assert cells["actor"] == cells["object_id"] == shown
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    jsonl = "".join(export_lines([_record(1, FORMULAS[0])], "jsonl"))
    assert json.loads(jsonl)["actor"] == FORMULAS[0]  # the verifiable export is unaltered


def test_formula_typed_at_login_is_defused_in_the_audit_export(world: World) -> None:
    """A username is the one field an unauthenticated stranger writes into the audit log."""
    import csv

    services = world.api.services
    with pytest.raises(FaceLeadError) as refused:
        identity_service.login(services, FORMULAS[0], "x" * 12, "000000", "127.0.0.1")
    assert refused.value.code == "bad_credentials"
    sink = io.StringIO()
    audit_service.export_events(services, world.api.installed.login("audra"), sink, fmt="csv")
    header, *rows = list(csv.reader(io.StringIO(sink.getvalue())))
    actors = [dict(zip(header, row, strict=True))["actor"] for row in rows]
    assert "'" + FORMULAS[0] in actors  # the stranger's formula is in the log, defused
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)


# --- property: any bytes behind any magic end in a documented code ---------------------

FUZZ_EXAMPLES = int(os.environ.get("FACELEAD_FUZZ_EXAMPLES", "150"))
DECODE_CODES = {
    "empty_file", "file_too_large", "url_not_allowed", "video_not_allowed",
    "animated_not_allowed", "multi_frame_not_allowed", "unsupported_format",
    "too_many_pixels", "corrupt_image",
}  # fmt: skip
MAGICS = [
    b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8X", b"GIF89a", b"BM",
    b"\x00\x00\x00\x18ftypisom", b"\x1a\x45\xdf\xa3", b"OggS", b"<svg", b"http://",
]  # fmt: skip
SMALL = DecodeLimits(max_bytes=64 * 1024, max_pixels=4_000_000, max_side=4000)


@given(st.sampled_from(MAGICS), st.binary(max_size=4096))
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
def test_decoder_refuses_arbitrary_bytes_with_a_documented_code(magic: bytes, tail: bytes) -> None:
    try:
        decoded = decode_image(magic + tail, SMALL)
    except ImageError as exc:
        assert exc.code in DECODE_CODES, exc.code
    else:  # random bytes that happen to be a valid still image: within the limits
        height, width, _ = decoded.pixels.shape
        assert width * height <= SMALL.max_pixels
