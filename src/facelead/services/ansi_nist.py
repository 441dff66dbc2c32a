"""A small reader and writer of ANSI/NIST-ITL transactions, traditional encoding.

Only what booking-photo import needs: Type-1 (transaction), Type-2
(descriptive text) and Type-10 (facial image) records. Other record types are
skipped by their length: the tagged ones (9, 13-99) by field x.001, the
binary ones (3-8) by their 4-byte big-endian length. Our own reader rather
than a third-party package: the input comes from outside and is parsed with
explicit bounds on every length, and nothing here executes or allocates on
the file's say-so beyond its own size.

Field profile (EBTS names where EBTS has the field; docs/lifecycle.md):

- 1.005 DAT date of transaction, 1.008 ORI agency, 1.009 TCN control number
- 2.009 OCA booking number, 2.015 SID subject id, 2.022 DOB date of birth,
  2.045 DOA date of arrest (booking date)
- 10.003 IMT image type (FACE), 10.005 PHD photo date, 10.020 POS pose,
  10.999 DATA image bytes
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from facelead.domain.gallery import BookingRef, ImportRecord, pose_view
from facelead.errors import InputError

FS, GS, RS, US = b"\x1c", b"\x1d", b"\x1e", b"\x1f"
BINARY_TYPES = frozenset({3, 4, 5, 6, 7, 8})
MAX_FILE_BYTES = 256 * 1024 * 1024
VERSION = "0500"


def _bad(message: str) -> InputError:
    return InputError(f"ANSI/NIST-ITL: {message}", code="invalid_nist")


@dataclass(frozen=True)
class Record:
    """One logical record: its type and its fields by number (10.999 -> 999)."""

    type: int
    fields: dict[int, bytes] = field(default_factory=dict)

    def text(self, number: int) -> str:
        raw = self.fields.get(number, b"")
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _bad(f"field {self.type}.{number:03d} is not text") from None


@dataclass(frozen=True)
class Transaction:
    records: tuple[Record, ...]

    def of_type(self, rtype: int) -> list[Record]:
        return [r for r in self.records if r.type == rtype]


# --------------------------------------------------------------------------- reading


def _tagged(data: bytes, pos: int, rtype: int) -> tuple[Record, int]:
    """Parse the tagged record at ``pos``; returns it and the offset after it."""
    prefix = f"{rtype}.001:".encode()
    if data[pos : pos + len(prefix)] != prefix:
        raise _bad(f"record of type {rtype} expected at byte {pos}")
    end_len = pos + len(prefix)
    stop = end_len
    while stop < len(data) and stop - end_len < 12 and data[stop : stop + 1].isdigit():
        stop += 1
    if stop == end_len:
        raise _bad(f"record at byte {pos} has no length")
    length = int(data[end_len:stop])
    end = pos + length
    if length < len(prefix) + 2 or end > len(data) or data[end - 1 : end] != FS:
        raise _bad(f"record at byte {pos} has a bad length {length}")
    return Record(rtype, _fields(data[pos : end - 1], rtype)), end


def _fields(body: bytes, rtype: int) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(body):
        colon = body.find(b":", pos, pos + 16)
        if colon < 0:
            raise _bad(f"type {rtype} record has a field without a tag")
        tag = body[pos:colon].decode("ascii", "replace")
        kind, _, number = tag.partition(".")
        if kind != str(rtype) or not number.isdigit():
            raise _bad(f"type {rtype} record has a foreign tag {tag!r}")
        if int(number) == 999:  # binary data: always the last field, runs to the end
            fields[999] = body[colon + 1 :]
            break
        stop = body.find(GS, colon + 1)
        stop = len(body) if stop < 0 else stop
        fields[int(number)] = body[colon + 1 : stop]
        pos = stop + 1
    return fields


def _content(type1: Record) -> list[tuple[int, str]]:
    """1.003 CNT: the first subfield counts the others, each naming a record type and IDC."""
    subfields = type1.fields.get(3, b"").split(RS)
    try:
        items = [s.split(US) for s in subfields]
        declared = int(items[0][1])
        rest = [(int(t), i.decode("ascii")) for t, i in items[1:]]
    except (ValueError, IndexError):
        raise _bad("field 1.003 (content) is malformed") from None
    if declared != len(rest):
        raise _bad(f"field 1.003 lists {len(rest)} records but declares {declared}")
    return rest


def read_transaction(data: bytes) -> Transaction:
    """Parse a whole file; any inconsistency raises ``invalid_nist``."""
    if len(data) > MAX_FILE_BYTES:
        raise _bad(f"file larger than {MAX_FILE_BYTES} bytes")
    type1, pos = _tagged(data, 0, 1)
    records = [type1]
    for rtype, _idc in _content(type1):
        if rtype in BINARY_TYPES:
            if pos + 4 > len(data):
                raise _bad(f"type {rtype} record truncated")
            length = int.from_bytes(data[pos : pos + 4], "big")
            if length < 5 or pos + length > len(data):
                raise _bad(f"type {rtype} record has a bad length {length}")
            records.append(Record(rtype))
            pos += length
        else:
            record, pos = _tagged(data, pos, rtype)
            records.append(record)
    if pos != len(data):
        raise _bad(f"{len(data) - pos} bytes after the last record")
    return Transaction(tuple(records))


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise _bad(f"date {text!r} is not YYYYMMDD") from None


def import_records(data: bytes, source: str) -> list[ImportRecord]:
    """One ImportRecord per facial Type-10 record; the booking comes from Types 1 and 2.

    A Type-10 record of another image type (scar, mark, tattoo) is not a face
    and is left out.
    """
    tx = read_transaction(data)
    type1 = tx.records[0]
    type2 = tx.of_type(2)
    if not type2:
        raise _bad("no Type-2 record: the subject and booking are unknown")
    desc = type2[0]
    subject = desc.text(15)
    booking = desc.text(9) or type1.text(9)
    if not subject or not booking:
        raise _bad("Type-2 needs 2.015 (subject id) and 2.009 or 1.009 (booking number)")
    booking_date = _date(desc.text(45)) or _date(type1.text(5))
    out = []
    for n, rec in enumerate(tx.records):
        if rec.type != 10 or rec.text(3).upper() != "FACE":
            continue
        ref = BookingRef(
            subject_id=subject,
            booking_number=booking,
            booking_date=booking_date,
            agency=type1.text(8) or "UNKNOWN",
            view=pose_view(rec.text(20)),
        )
        out.append(
            ImportRecord(
                key=f"nist:{source}#{n}",
                source=f"{source}#{n}",
                ref=ref,
                data=rec.fields.get(999, b""),
                birth_date=_date(desc.text(22)),
            )
        )
    return out


# --------------------------------------------------------------------------- writing


def encode_record(rtype: int, fields: Sequence[tuple[int, bytes]]) -> bytes:
    """A tagged record; x.001 (its own length, digits included) is computed here."""
    body = b"".join(GS + f"{rtype}.{num:03d}:".encode() + value for num, value in fields) + FS
    head = f"{rtype}.001:".encode()
    length = len(head) + len(body) + 1
    while len(head) + len(str(length)) + len(body) != length:
        length = len(head) + len(str(length)) + len(body)
    return head + str(length).encode() + body


@dataclass(frozen=True)
class FaceImage:
    data: bytes
    width: int
    height: int
    pose: str = "F"  # F frontal, L/R profile, A angled
    compression: str = "JPEGB"


def write_transaction(
    *,
    subject_id: str,
    booking_number: str,
    booking_date: dt.date,
    agency: str,
    faces: Sequence[FaceImage],
    birth_date: dt.date | None = None,
    control_number: str = "FACELEAD-0001",
) -> bytes:
    """A booking transaction: Type-1, one Type-2, one Type-10 per face image."""
    day = booking_date.strftime("%Y%m%d").encode()
    cnt = RS.join(
        [b"1" + US + str(1 + len(faces)).encode(), b"2" + US + b"00"]
        + [b"10" + US + f"{i + 1:02d}".encode() for i in range(len(faces))]
    )
    type1 = encode_record(
        1,
        [
            (2, VERSION.encode()),
            (3, cnt),
            (4, b"MAP"),
            (5, day),
            (7, agency.encode()),
            (8, agency.encode()),
            (9, control_number.encode()),
            (11, b"00.00"),
            (12, b"00.00"),
        ],
    )
    type2_fields = [(2, b"00"), (9, booking_number.encode()), (15, subject_id.encode())]
    if birth_date is not None:
        type2_fields.append((22, birth_date.strftime("%Y%m%d").encode()))
    type2_fields.append((45, day))
    parts = [type1, encode_record(2, type2_fields)]
    for i, face in enumerate(faces):
        parts.append(
            encode_record(
                10,
                [
                    (2, f"{i + 1:02d}".encode()),
                    (3, b"FACE"),
                    (4, agency.encode()),
                    (5, day),
                    (6, str(face.width).encode()),
                    (7, str(face.height).encode()),
                    (8, b"0"),
                    (9, b"1"),
                    (10, b"1"),
                    (11, face.compression.encode()),
                    (12, b"YCC"),
                    (20, face.pose.encode()),
                    (999, face.data),
                ],
            )
        )
    return b"".join(parts)
