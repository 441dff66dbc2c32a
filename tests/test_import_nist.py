"""ANSI/NIST-ITL reader and writer, manifests and the juvenile rule: no face models needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PIL import Image

from facelead.domain.gallery import (
    BookingRef,
    ImportRecord,
    PhotoView,
    age_on,
    booking_age,
    check_adult,
    read_import_manifest,
)
from facelead.errors import InputError, PolicyRefusal
from facelead.services import ansi_nist
from facelead.services.ansi_nist import FaceImage, read_transaction, write_transaction


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


def face_of(path: Path, pose: str = "F") -> FaceImage:
    with Image.open(path) as img:
        width, height = img.size
    return FaceImage(path.read_bytes(), width, height, pose)


def booking_file(meds_dir: Path, **overrides: object) -> bytes:
    fields: dict[str, object] = dict(
        subject_id="CII-0001",
        booking_number="BK-2010-0001",
        booking_date=dt.date(2010, 5, 17),
        agency="CA0190000",
        faces=[
            face_of(meds_dir / "S001-08-t10_01.jpg"),
            face_of(meds_dir / "S001-08-t10_02.jpg", "R"),
        ],
        birth_date=dt.date(1980, 2, 29),
    )
    fields.update(overrides)
    return write_transaction(**fields)  # type: ignore[arg-type]


def test_written_file_reads_back_field_for_field(meds_dir: Path) -> None:
    data = booking_file(meds_dir)
    tx = read_transaction(data)
    assert [r.type for r in tx.records] == [1, 2, 10, 10]
    type1, type2, first, second = tx.records
    assert type1.text(2) == "0500" and type1.text(8) == "CA0190000"
    assert type2.text(15) == "CII-0001" and type2.text(9) == "BK-2010-0001"
    assert type2.text(22) == "19800229" and type2.text(45) == "20100517"
    assert first.fields[999] == (meds_dir / "S001-08-t10_01.jpg").read_bytes()
    assert second.fields[999] == (meds_dir / "S001-08-t10_02.jpg").read_bytes()
    assert (first.text(20), second.text(20)) == ("F", "R")
    width, height = size_of(meds_dir / "S001-08-t10_01.jpg")
    assert (first.text(6), first.text(7)) == (str(width), str(height))
    # Every tagged record's x.001 is its own exact length (the reader checks the FS there).
    assert int(type1.text(1)) + int(type2.text(1)) + int(first.text(1)) + int(second.text(1)) == (
        len(data)
    )


def test_import_records_carry_booking_pose_and_birth_date(meds_dir: Path) -> None:
    records = ansi_nist.import_records(booking_file(meds_dir), "/x/booking.an2")
    assert [r.ref.view for r in records] == [PhotoView.FRONTAL, PhotoView.PROFILE]
    ref = records[0].ref
    assert (ref.subject_id, ref.booking_number, ref.agency) == (
        "CII-0001",
        "BK-2010-0001",
        "CA0190000",
    )
    assert ref.booking_date == dt.date(2010, 5, 17)
    assert records[0].birth_date == dt.date(1980, 2, 29)
    assert booking_age(records[0]) == 30
    assert len({r.key for r in records}) == 2  # one status row per Type-10 record


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-10],  # truncated image record
        lambda d: d.replace(b"1.001:", b"1.001:9", 1),  # wrong Type-1 length
        lambda d: d.replace(b"1\x1f3", b"1\x1f4", 1),  # CNT declares a record that is missing
        lambda d: d + b"junk",  # bytes after the last record
        lambda d: b"2.001:" + d[6:],  # does not start with a Type-1 record
    ],
)
def test_damaged_files_are_refused_not_misread(meds_dir: Path, damage: object) -> None:
    data = damage(booking_file(meds_dir))  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        ansi_nist.import_records(data, "bad.an2")
    assert info.value.code == "invalid_nist"


def test_type2_without_subject_is_refused(meds_dir: Path) -> None:
    with pytest.raises(InputError, match=r"2\.015"):
        ansi_nist.import_records(booking_file(meds_dir, subject_id=""), "x.an2")


def test_binary_records_are_skipped_by_their_length(meds_dir: Path) -> None:
    """A Type-4 fingerprint record (binary) between Type-2 and Type-10 is stepped over."""
    data = booking_file(meds_dir, faces=[face_of(meds_dir / "S002-01-t10_01.jpg")])
    type1 = read_transaction(data).records[0]
    type4 = (18).to_bytes(4, "big") + bytes(14)
    cnt = ansi_nist.RS.join([b"1\x1f3", b"2\x1f00", b"4\x1f01", b"10\x1f01"])
    fields = [(n, v) for n, v in sorted(type1.fields.items()) if n != 1]
    new_type1 = ansi_nist.encode_record(1, [(n, cnt if n == 3 else v) for n, v in fields])
    rest = data[int(type1.text(1)) :]
    type2_len = int(rest[6 : rest.index(ansi_nist.GS)])
    spliced = new_type1 + rest[:type2_len] + type4 + rest[type2_len:]
    assert [r.type for r in read_transaction(spliced).records] == [1, 2, 4, 10]
    assert len(ansi_nist.import_records(spliced, "x.an2")) == 1


def test_age_rule() -> None:
    assert age_on(dt.date(2000, 2, 29), dt.date(2018, 2, 28)) == 17
    assert age_on(dt.date(2000, 2, 29), dt.date(2018, 3, 1)) == 18
    ref = BookingRef("S1", "B1", dt.date(2018, 2, 28))
    minor = ImportRecord("k", "s", ref, birth_date=dt.date(2000, 2, 29))
    with pytest.raises(PolicyRefusal) as info:
        check_adult(minor, allow_juvenile=False, require_age=False)
    assert info.value.code == "juvenile_record"
    check_adult(minor, allow_juvenile=True, require_age=False)
    unknown = ImportRecord("k", "s", ref)
    check_adult(unknown, allow_juvenile=False, require_age=False)
    with pytest.raises(PolicyRefusal, match="no date of birth"):
        check_adult(unknown, allow_juvenile=False, require_age=True)
    stated = ImportRecord("k", "s", BookingRef("S1", "B1"), age_at_booking=17)
    with pytest.raises(PolicyRefusal):
        check_adult(stated, allow_juvenile=False, require_age=False)


def test_manifest_aliases_and_errors(tmp_path: Path) -> None:
    sheet = tmp_path / "manifest.csv"
    sheet.write_text(
        "image_path,subject_id,booking_number,date,agency,pose,dob\n"
        "a.jpg,S1,B1,2012-03-04,LASD,F,1990-01-01\n"
        "b.jpg,S1,B2,20130405,,profile,\n"
    )
    first, second = read_import_manifest(sheet)
    assert first.path == str(tmp_path / "a.jpg")
    assert first.ref.booking_date == dt.date(2012, 3, 4) and first.ref.view is PhotoView.FRONTAL
    assert booking_age(first) == 22
    assert second.ref.booking_date == dt.date(2013, 4, 5) and second.ref.agency == "UNKNOWN"
    assert second.ref.view is PhotoView.PROFILE and booking_age(second) is None
    sheet.write_text("path,subject_id,booking_number\na.jpg,,B1\n")
    with pytest.raises(InputError, match="line 2: subject_id is empty"):
        read_import_manifest(sheet)
    sheet.write_text("path,subject\na.jpg,S1\n")
    with pytest.raises(InputError) as info:
        read_import_manifest(sheet)
    assert info.value.code == "invalid_manifest"
