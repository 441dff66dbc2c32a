"""Image key rotation: re-seal every stored file under a new key, then retire the old one.

Real homes (SQLite, real key files, real sealed files): after a rotation every
image reads back byte for byte and only the new key opens it; a rotation killed
with SIGKILL at the key switch, between two files or inside a file's write
leaves every file readable and a rerun finishes the same rotation; the old key
is deleted only once no file needs it; a key from FACELEAD_IMAGE_KEY is rotated
with the operator's new key and a switch of the environment; wrong roles and
bad input change nothing; the audit chain verifies and ``facelead doctor``
stays clean.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facelead.config import Settings
from facelead.domain.access import Role
from facelead.errors import ConflictError, FaceLeadError, PermissionDenied
from facelead.services.audit import verify_log
from facelead.services.context import Services
from facelead.services.doctor import diagnose
from facelead.services.identity import issue_token
from facelead.services.keys import retire_image_keys, rotate_image_key
from facelead.store import image_keys
from facelead.store.audit_models import AuditEvent
from facelead.store.images import IMAGE_KEY_FILE, ImageIntegrityError, ImageStore, key_id
from tests.conftest import Installed, audit_actor, install
from tests.test_cli_roles import invoke
from tests.test_doctor import enrol_some

KEY = bytes(range(32))
NEW = bytes(range(100, 132))
OTHER = bytes(range(200, 232))

Files = dict[tuple[str, str], bytes]  # (area, sha) -> plaintext


def store_of(services: Services, area: str) -> ImageStore:
    return services.images if area == "images" else services.probes


def put_files(services: Services, images: int = 8, probes: int = 3) -> Files:
    """Images and probes written through the stores (sealed under the current key)."""
    files: Files = {}
    for area, n in (("images", images), ("probes", probes)):
        for i in range(n):
            data = f"{area} file {i} ".encode() * (40 + i)
            files[(area, store_of(services, area).put(data))] = data
    return files


def fresh(home: Path) -> Services:
    """What another process (a restarted server) sees: nothing cached from this one."""
    return Services(Settings(home=home))


def assert_readable(services: Services, files: Files) -> None:
    for (area, sha), data in files.items():
        assert store_of(services, area).get(sha) == data, (area, sha)


def sealing_keys(services: Services, files: Files) -> Counter[str]:
    """How many files each key id seals."""
    found: Counter[str] = Counter()
    for area, sha in files:
        kid = store_of(services, area).sealed_with(sha)
        found[kid.hex() if kid else "plaintext"] += 1
    return found


def assert_opens(root: Path, key: bytes, files: Files) -> None:
    """Every file opens with ``key`` alone: no other key is needed any more."""
    for (area, sha), data in files.items():
        assert ImageStore(root / area, key).get(sha) == data, (area, sha)


def snapshot(home: Path) -> dict[str, bytes]:
    """Every image key file and every stored file, byte for byte: to prove nothing changed.

    (Other files of ``keys/``, such as the audit checkpoint key, are not this test's.)
    """
    paths = [*(home / "keys").glob("image-*")]
    paths += [p for area in ("images", "probes") for p in (home / area).rglob("*")]
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(paths) if p.is_file()}


def rotations(services: Services) -> list[tuple[str, dict[str, Any]]]:
    """(outcome, details) of every audited ``system.key_rotate`` event, oldest first."""
    with services.db.session() as session:
        rows = session.execute(
            sa.select(AuditEvent.outcome, AuditEvent.details)
            .where(AuditEvent.action == "system.key_rotate")
            .order_by(AuditEvent.seq)
        ).all()
    return [(outcome, dict(details)) for outcome, details in rows]


def assert_audit_verifies(services: Services) -> None:
    report = verify_log(services, audit_actor(Role.AUDITOR))
    assert report.ok, report.issues


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Installed]:
    """An installed SQLite home (its first admin logged in), no images yet."""
    installed = install(tmp_path / "home")
    yield installed
    installed.services.db.dispose()


# --- rotation end to end -------------------------------------------------------------


def test_rotation_reseals_every_image_and_the_old_key_is_retired(
    tmp_path: Path, meds_dir: Path
) -> None:
    installed = install(tmp_path / "home")
    services, admin = installed.services, installed.admin
    home = services.settings.resolved_home
    installed.add("rita", "records")
    shas = enrol_some(services, installed.login("rita"), meds_dir, n=3)
    services.index()
    files: Files = {("images", sha): services.images.get(sha) for sha in shas}
    old = services.image_key

    report = rotate_image_key(services, admin)

    assert report.complete and not report.resumed and report.failed == ()
    assert (report.resealed, report.unchanged, report.remaining) == (3, 0, 0)
    new = services.image_key
    assert new != old and report.key_id == key_id(new).hex()
    assert report.retired == (key_id(old).hex(),)
    assert sealing_keys(services, files) == {key_id(new).hex(): 3}
    assert_readable(services, files)
    assert_readable(fresh(home), files)
    key_file = services.settings.keys_dir / IMAGE_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert image_keys.read_rotation(services.settings.keys_dir) is None
    for sha in shas:  # the new bytes are no longer openable by the old key alone
        with pytest.raises(ImageIntegrityError):
            ImageStore(services.settings.images_dir, old).get(sha)
    assert diagnose(services, admin).findings == ()

    retired = retire_image_keys(services, admin)

    assert set(retired.removed) == {key_id(old).hex(), key_id(new).hex()}  # new: a copy
    assert [p.name for p in services.settings.keys_dir.glob("image-aes256gcm*")] == [IMAGE_KEY_FILE]
    after = fresh(home)
    assert after.image_key == new and not after.images.knows_key(key_id(old))
    assert_readable(after, files)
    assert diagnose(services, admin).findings == ()
    outcomes = [(outcome, details["mode"]) for outcome, details in rotations(services)]
    assert outcomes == [("ok", "rotate"), ("ok", "retire")]
    assert rotations(services)[0][1]["resealed"] == 3
    assert_audit_verifies(services)
    after.db.dispose()
    services.db.dispose()


def test_a_rotation_covers_probes_and_plaintext_files(home: Installed) -> None:
    services = home.services
    files = put_files(services)
    plain = ImageStore(services.settings.probes_dir).put(b"a probe from before encryption")
    files[("probes", plain)] = b"a probe from before encryption"
    report = rotate_image_key(services, home.admin)
    assert (report.resealed, report.remaining) == (12, 0)
    assert sealing_keys(services, files) == {report.key_id: 12}
    assert_readable(fresh(services.settings.resolved_home), files)


def test_a_second_rotation_retires_both_old_keys(home: Installed) -> None:
    services = home.services
    files = put_files(services, images=4, probes=1)
    first = rotate_image_key(services, home.admin)
    second = rotate_image_key(services, home.admin)
    assert second.key_id != first.key_id and second.resealed == 5 and len(second.retired) == 2
    retired = retire_image_keys(services, home.admin)
    assert len(retired.removed) == 3 and retired.files == 5
    assert_readable(fresh(services.settings.resolved_home), files)


def target_key(services: Services, kid: bytes) -> bytes:
    key = fresh(services.settings.resolved_home).image_key
    assert key_id(key) == kid
    return key


# --- interrupted rotations -------------------------------------------------------------

KILLER = """
import os, signal, sys
from facelead.config import Settings
from facelead.domain.access import Actor, Role
from facelead.services import keys
from facelead.services.context import Services
from facelead.store import images

home, where, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = 0

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

def counting(real):
    def call(*args):
        global seen
        counted = where == "between" or not str(args[1]).startswith(home + "/keys")
        if counted and seen >= after:
            die()
        result = real(*args)
        seen += counted
        return result
    return call

if where == "switch":
    keys.image_keys.install_current_key = die
elif where == "between":
    images.ImageStore.reseal = counting(images.ImageStore.reseal)
else:  # temporary file written and synced, killed before its rename
    images.os.replace = counting(os.replace)
services = Services(Settings(home=home))
keys.rotate_image_key(services, Actor(None, "adam", frozenset({Role.ADMIN}), "LACRIS"))
sys.exit(3)
"""


@pytest.mark.parametrize(("where", "after"), [("switch", 0), ("between", 5), ("write", 4)])
def test_a_killed_rotation_leaves_every_file_readable_and_a_rerun_finishes_it(
    home: Installed, where: str, after: int
) -> None:
    services = home.services
    root = services.settings.resolved_home
    files = put_files(services)
    old = key_id(services.image_key).hex()
    env = {**os.environ, "FACELEAD_HOME": str(root)}
    env.pop("FACELEAD_IMAGE_KEY", None)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(root), where, str(after)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = 0 if where == "switch" else after  # files re-sealed before the kill

    target = image_keys.read_rotation(services.settings.keys_dir)
    assert target is not None  # the rotation is on record as unfinished
    half = fresh(root)
    assert_readable(half, files)  # old key, new key, each file one or the other
    assert sealing_keys(half, files) == +Counter({old: 11 - done, target.hex(): done})
    assert (key_id(half.image_key).hex() == old) == (where == "switch")  # key file switched?
    temporary = [p for area in ("images", "probes") for p in (root / area).rglob(".tmp-*")]
    assert len(temporary) == (1 if where == "write" else 0)  # killed inside a file's write
    with pytest.raises(ConflictError) as refused:
        retire_image_keys(services, home.admin)
    assert refused.value.code == "image_key_rotation_incomplete"

    report = rotate_image_key(services, home.admin)

    assert report.resumed and report.complete and report.key_id == target.hex()
    assert (report.resealed, report.unchanged) == (11 - done, done)
    assert sealing_keys(fresh(root), files) == {target.hex(): 11}
    retire_image_keys(services, home.admin)
    assert_opens(root, target_key(services, target), files)
    outcomes = [outcome for outcome, _ in rotations(services)]
    assert outcomes == ["refused:image_key_rotation_incomplete", "ok", "ok"]
    doctor = diagnose(services, home.admin)
    assert doctor.ok
    assert not {"retired_key_file", "unknown_key_file", "unencrypted_file"} & set(doctor.counts())
    assert_audit_verifies(services)


def test_a_limit_spreads_the_work_and_doctor_shows_the_unfinished_part(
    tmp_path: Path, meds_dir: Path
) -> None:
    installed = install(tmp_path / "home")
    services, admin = installed.services, installed.admin
    shas = enrol_some(services, admin, meds_dir, n=3)
    services.index()
    files: Files = {("images", sha): services.images.get(sha) for sha in shas}

    first = rotate_image_key(services, admin, limit=1)

    assert (first.resealed, first.remaining, first.complete) == (1, 2, False)
    assert diagnose(services, admin).counts() == {"retired_key_file": 2}  # warnings only
    assert diagnose(services, admin).ok
    done = rotate_image_key(services, admin)
    assert done.resumed and (done.resealed, done.unchanged, done.remaining) == (2, 1, 0)
    assert done.key_id == first.key_id  # the same rotation, not a new key
    assert_readable(fresh(services.settings.resolved_home), files)

    foreign = ImageStore(tmp_path / "foreign", OTHER)  # a file sealed under a key nobody has
    sealed_elsewhere = foreign.path(foreign.put(files[("images", shas[0])])).read_bytes()
    services.images.path(shas[0]).write_bytes(sealed_elsewhere)
    report = diagnose(services, admin)
    assert not report.ok and report.counts() == {"unknown_key_file": 1}
    stuck = rotate_image_key(services, admin)
    assert stuck.failed == (f"images/{shas[0]}: image_key_mismatch",) and stuck.remaining == 1
    services.db.dispose()


# --- refusals change nothing -----------------------------------------------------------


def test_wrong_roles_and_bad_input_are_refused_and_change_nothing(home: Installed) -> None:
    services = home.services
    root = services.settings.resolved_home
    put_files(services, images=3, probes=1)
    home.add("rita", "records")
    home.add("audra", "auditor")
    before = snapshot(root)
    for who in (home.login("rita"), home.login("audra")):
        for attempt in (rotate_image_key, retire_image_keys):
            with pytest.raises(PermissionDenied) as err:
                attempt(services, who)
            assert err.value.code == "forbidden"
    for kwargs, code in (
        ({"limit": 0}, "invalid_limit"),
        ({"new_key": "not a key"}, "invalid_image_key"),
        ({"new_key": services.image_key.hex()}, "image_key_reused"),
    ):
        with pytest.raises(FaceLeadError) as bad:
            rotate_image_key(services, home.admin, **kwargs)  # type: ignore[arg-type]
        assert bad.value.code == code
    with image_keys.rotation_lock(services.settings.keys_dir):  # another run holds the keys
        for attempt in (rotate_image_key, retire_image_keys):
            with pytest.raises(ConflictError) as busy:
                attempt(services, home.admin)
            assert busy.value.code == "image_key_rotation_busy"
    assert snapshot(root) == before
    refused = [outcome for outcome, _ in rotations(services)]
    assert refused == ["refused:forbidden"] * 4 + [
        "refused:invalid_limit",
        "refused:invalid_image_key",
        "refused:image_key_reused",
        "refused:image_key_rotation_busy",
        "refused:image_key_rotation_busy",
    ]
    assert_audit_verifies(services)


def test_retiring_is_refused_while_a_file_still_uses_the_old_key(home: Installed) -> None:
    services = home.services
    files = put_files(services, images=3, probes=1)
    old = services.image_key
    rotate_image_key(services, home.admin)
    # a server started before the rotation wrote one more file under the old key
    late = ImageStore(services.settings.images_dir, old).put(b"written by a stale worker")
    files[("images", late)] = b"written by a stale worker"
    before = snapshot(services.settings.resolved_home)
    with pytest.raises(ConflictError) as err:
        retire_image_keys(services, home.admin)
    assert err.value.code == "image_key_in_use" and key_id(old).hex() in err.value.message
    assert snapshot(services.settings.resolved_home) == before
    assert_readable(fresh(services.settings.resolved_home), files)
    rotate_image_key(services, home.admin)
    retire_image_keys(services, home.admin)
    assert_readable(fresh(services.settings.resolved_home), files)


# --- a key from the environment --------------------------------------------------------


def test_an_environment_key_rotates_with_the_operators_new_key_and_a_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELEAD_IMAGE_KEY", KEY.hex())
    installed = install(tmp_path / "home")
    services, admin = installed.services, installed.admin
    root, keys_dir = services.settings.resolved_home, services.settings.keys_dir
    files = put_files(services, images=4, probes=2)
    before = snapshot(root)
    with pytest.raises(FaceLeadError) as missing:
        rotate_image_key(services, admin)
    assert missing.value.code == "image_key_new_missing"
    assert snapshot(root) == before

    report = rotate_image_key(services, admin, new_key=NEW.hex())

    assert report.awaiting_environment and not report.complete and report.remaining == 0
    assert sealing_keys(services, files) == {key_id(NEW).hex(): 6}
    assert not (keys_dir / IMAGE_KEY_FILE).exists()  # the environment's key stays off the disk
    assert_readable(fresh(root), files)  # a server still on the old key reads the new files
    for refused, call in (
        ("image_key_rotation_pending", lambda: rotate_image_key(services, admin, OTHER.hex())),
        ("image_key_rotation_incomplete", lambda: retire_image_keys(services, admin)),
    ):
        with pytest.raises(ConflictError) as err:
            call()
        assert err.value.code == refused

    monkeypatch.setenv("FACELEAD_IMAGE_KEY", NEW.hex())  # the operator moves every process
    switched = fresh(root)
    late = ImageStore(services.settings.images_dir, KEY).put(b"from a worker not yet restarted")
    files[("images", late)] = b"from a worker not yet restarted"
    finished = rotate_image_key(switched, admin)
    assert finished.complete and finished.resumed and finished.resealed == 1
    retire_image_keys(switched, admin)
    assert not list(keys_dir.glob("image-aes256gcm*"))  # no image key left on the disk
    assert_opens(root, NEW, files)
    assert_audit_verifies(switched)
    switched.db.dispose()
    services.db.dispose()


# --- the command line ----------------------------------------------------------------------


def test_the_commands_print_one_line_refusals_and_a_summary(home: Installed) -> None:
    services = home.services
    root = services.settings.resolved_home
    put_files(services, images=2, probes=0)
    token = issue_token(services, home.admin, "admin", days=1).token
    bad = invoke(root, ["keys", "rotate-image-key", "--limit", "0"], FACELEAD_TOKEN=token)
    assert bad.code == 2 and bad.err.strip().splitlines() == [bad.err.strip()]
    assert bad.err.startswith("error [invalid_limit]: ")
    in_env = services.image_key.hex()
    env_key = invoke(
        root, ["keys", "rotate-image-key"], FACELEAD_TOKEN=token, FACELEAD_IMAGE_KEY=in_env
    )
    assert env_key.code == 2 and env_key.err.startswith("error [image_key_new_missing]: ")
    ran = invoke(root, ["keys", "rotate-image-key"], FACELEAD_TOKEN=token)
    assert ran.code == 0 and "2 files re-sealed" in ran.out and "Rotation complete" in ran.out
    retired = invoke(root, ["keys", "retire-image-keys"], FACELEAD_TOKEN=token)
    assert retired.code == 0 and "2 stored files checked" in retired.out, retired
