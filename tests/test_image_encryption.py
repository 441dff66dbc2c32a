"""Images encrypted at rest: AES-256-GCM, the address still the plaintext's SHA-256.

What is on disk must give away no face (no JPEG header, no plaintext run), any
change to a sealed file must surface as a typed error rather than as altered
pixels, older plaintext stores must stay readable, and ``facelead doctor`` must
point at (and ``--repair`` seal) files written before encryption.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import threading
from pathlib import Path

import pytest

from facelead.config import Settings
from facelead.domain.access import Actor
from facelead.errors import ConfigurationError, FaceLeadError
from facelead.services.context import Services
from facelead.services.doctor import diagnose
from facelead.store import image_keys
from facelead.store.image_keys import ImageKeyring, entry_path
from facelead.store.images import (
    HEADER_LEN,
    IMAGE_KEY_FILE,
    MAGIC,
    ImageIntegrityError,
    ImageStore,
    key_id,
    load_or_create_image_key,
    parse_image_key,
)
from tests.conftest import Installed, install
from tests.test_doctor import enrol_some

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"


def sealed(tmp_path: Path, key: bytes = KEY) -> ImageStore:
    return ImageStore(tmp_path / "images", key)


def test_round_trip_and_nothing_of_the_image_on_disk(tmp_path: Path) -> None:
    store = sealed(tmp_path)
    sha = store.put(JPEG)
    assert sha == hashlib.sha256(JPEG).hexdigest()  # the address is the plaintext's
    raw = store.path(sha).read_bytes()
    assert raw.startswith(MAGIC) and not raw.startswith(b"\xff\xd8")
    assert b"\xff\xd8\xff" not in raw and b"JFIF" not in raw and bytes(range(64)) not in raw
    assert len(raw) == len(JPEG) + HEADER_LEN + 16  # header + ciphertext + GCM tag
    assert store.get(sha) == JPEG
    assert store.is_sealed(sha)
    again = store.put(JPEG)  # deduplicated: the sealed file is left as it is
    assert again == sha and store.path(sha).read_bytes() == raw
    second = store.path(store.put(JPEG + b"x")).read_bytes()
    assert second[HEADER_LEN - 12 : HEADER_LEN] != raw[HEADER_LEN - 12 : HEADER_LEN]  # nonces


@pytest.mark.parametrize(
    ("where", "code"),
    [
        (HEADER_LEN + 5, "image_integrity"),  # a ciphertext byte
        (-1, "image_integrity"),  # the tag
        (HEADER_LEN - 1, "image_integrity"),  # the nonce
        (len(MAGIC) + 2, "image_key_mismatch"),  # the key id
    ],
)
def test_any_flipped_bit_is_a_typed_error(tmp_path: Path, where: int, code: str) -> None:
    store = sealed(tmp_path)
    sha = store.put(JPEG)
    path = store.path(sha)
    raw = bytearray(path.read_bytes())
    raw[where] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageIntegrityError) as err:
        store.get(sha)
    assert err.value.code == code and err.value.http_status == 500


def test_truncated_moved_and_wrong_key_files_are_refused(tmp_path: Path) -> None:
    store = sealed(tmp_path)
    sha = store.put(JPEG)
    other = store.put(JPEG[::-1])
    store.path(other).write_bytes(store.path(sha).read_bytes())  # a sealed file moved
    with pytest.raises(ImageIntegrityError, match="tag"):
        store.get(other)
    store.path(sha).write_bytes(store.path(sha).read_bytes()[: HEADER_LEN + 10])
    with pytest.raises(ImageIntegrityError) as err:
        store.get(sha)
    assert err.value.code == "image_integrity"
    fresh = store.put(b"another photo")
    with pytest.raises(ImageIntegrityError) as mismatch:
        sealed(tmp_path, OTHER_KEY).get(fresh)
    assert mismatch.value.code == "image_key_mismatch"
    with pytest.raises(ConfigurationError) as missing:
        ImageStore(store.root).get(fresh)
    assert missing.value.code == "image_key_missing"


def test_plaintext_files_from_before_stay_readable_but_are_checked(tmp_path: Path) -> None:
    old = ImageStore(tmp_path / "images")  # the store before encryption was turned on
    sha = old.put(JPEG)
    assert old.path(sha).read_bytes() == JPEG
    store = sealed(tmp_path)
    assert store.get(sha) == JPEG and not store.is_sealed(sha)
    assert store.seal_in_place(sha) is True and store.is_sealed(sha)
    assert store.get(sha) == JPEG and store.seal_in_place(sha) is False
    altered = old.put(b"plain bytes")
    old.path(altered).write_bytes(b"plain bytes, altered")
    with pytest.raises(ImageIntegrityError):
        store.get(altered)
    with pytest.raises(ImageIntegrityError):
        store.seal_in_place(altered)  # sealing never launders a changed file
    assert old.path(altered).read_bytes() == b"plain bytes, altered"
    magic_plain = MAGIC + b"a plaintext that merely starts like a sealed file"
    assert store.get(old.put(magic_plain)) == magic_plain


def test_keys_parse_from_hex_or_base64_and_nothing_else() -> None:
    assert parse_image_key(KEY.hex()) == KEY
    assert parse_image_key(base64.b64encode(KEY).decode()) == KEY
    assert parse_image_key(base64.urlsafe_b64encode(OTHER_KEY).decode() + "\n") == OTHER_KEY
    for bad in ("", "short", KEY.hex()[:-2], base64.b64encode(KEY[:16]).decode(), "z" * 64):
        with pytest.raises(ConfigurationError) as err:
            parse_image_key(bad)
        assert err.value.code == "invalid_image_key"
        assert bad == "" or bad not in err.value.message  # the key is never echoed


def test_init_creates_one_private_key_file_even_when_racing(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    services.initialise()
    path = services.settings.keys_dir / IMAGE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert services.images.encrypted and services.probes.encrypted
    assert load_or_create_image_key(path) == services.image_key
    services.db.dispose()

    racing = tmp_path / "race" / IMAGE_KEY_FILE
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_or_create_image_key(racing)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys) == 8
    assert [p.name for p in racing.parent.iterdir()] == [IMAGE_KEY_FILE]


def test_a_key_from_the_environment_leaves_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELEAD_IMAGE_KEY", KEY.hex())
    services = Services(Settings(home=tmp_path / "home"))
    services.initialise()
    assert services.image_key == KEY
    assert not (services.settings.keys_dir / IMAGE_KEY_FILE).exists()
    sha = services.probes.put(JPEG)
    assert ImageStore(services.probes.root, KEY).get(sha) == JPEG
    assert KEY.hex() not in repr(services.settings)  # a SecretStr: never in logs or reprs
    services.db.dispose()
    monkeypatch.setenv("FACELEAD_IMAGE_KEY", "not a key")
    broken = Services(Settings(home=tmp_path / "home"))
    with pytest.raises(FaceLeadError) as err:
        broken.initialise()
    assert err.value.code == "invalid_image_key"
    broken.db.dispose()


def test_doctor_reports_plaintext_files_and_repair_seals_them(
    tmp_path: Path, meds_dir: Path
) -> None:
    installed: Installed = install(tmp_path / "home")
    installed.add("rita", "records")
    rita: Actor = installed.login("rita")
    services = installed.services
    shas = enrol_some(services, rita, meds_dir, n=3)
    services.index()  # the saved index, current
    for sha in shas:  # enrolment wrote sealed files: no JPEG on disk
        raw = services.images.path(sha).read_bytes()
        assert raw.startswith(MAGIC) and b"\xff\xd8\xff" not in raw[:64]
    plain = [services.images.get(sha) for sha in shas[:2]]
    for sha, data in zip(shas[:2], plain, strict=True):  # as a pre-encryption store left them
        services.images.path(sha).write_bytes(data)
    bad = bytearray(plain[1])
    bad[len(bad) // 2] ^= 0xFF
    services.images.path(shas[1]).write_bytes(bytes(bad))

    report = diagnose(services, rita)
    assert report.ok and report.counts() == {"unencrypted_file": 2}
    repaired = diagnose(services, rita, repair=True)
    assert repaired.counts() == {"unencrypted_file": 1, "altered_file": 1}
    assert [f.check for f in repaired.errors] == ["altered_file"]
    assert services.images.is_sealed(shas[0]) and services.images.get(shas[0]) == plain[0]
    assert services.images.path(shas[1]).read_bytes() == bytes(bad)  # left for a person
    assert diagnose(services, rita).counts() == {"unencrypted_file": 1}
    services.db.dispose()


def test_a_keyring_opens_every_key_it_holds_and_seals_with_the_current(tmp_path: Path) -> None:
    """What a key rotation relies on (tests/test_image_key_rotation.py): files sealed under
    any key of the keyring open, new files are sealed under the current key, and a live
    store notices keys added or switched by another process."""
    third = bytes(range(64, 96))
    keys_dir = tmp_path / "keys"
    image_keys.write_key_file(keys_dir / IMAGE_KEY_FILE, KEY)
    store = ImageStore(tmp_path / "images", ImageKeyring(keys_dir))
    old = store.put(b"sealed under the first key")
    assert store.sealed_with(old) == key_id(KEY)
    newer = sealed(tmp_path, OTHER_KEY).put(b"sealed under another key")
    with pytest.raises(ImageIntegrityError) as err:
        store.get(newer)  # not in the keyring (yet)
    assert err.value.code == "image_key_mismatch"
    entry = entry_path(keys_dir, key_id(OTHER_KEY))
    image_keys.write_key_file(entry, OTHER_KEY)  # added by another process after the start
    assert store.get(newer) == b"sealed under another key"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    image_keys.install_current_key(keys_dir, third)  # the key file switched under a live store
    switched = store.put(b"written after the switch")
    assert store.sealed_with(switched) == key_id(third)
    assert store.get(switched) == b"written after the switch"
    with pytest.raises(ImageIntegrityError):
        store.get(old)  # the first key is nowhere any more
    image_keys.write_key_file(entry_path(keys_dir, key_id(KEY)), KEY)
    assert store.get(old) == b"sealed under the first key"  # kept as a keyring entry
    entry.write_text(KEY.hex())  # an entry holding another key than its name says
    with pytest.raises(ConfigurationError) as bad:
        ImageKeyring(keys_dir)
    assert bad.value.code == "invalid_image_key"
