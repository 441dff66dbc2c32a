"""The review workflow through the ``facelead`` command: every step, refusals as one line.

One real MEDS search in a SQLite home, each person acting with their own API
token, as a deployment's users would.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from facelead.domain.access import SYSTEM
from facelead.domain.gallery import BookingRef
from facelead.services.gallery import enroll_photo
from tests.conftest import make_services
from tests.test_cli import SEARCH_ARGS, certified_token, one_error_line, run

pytestmark = pytest.mark.models


def test_review_workflow_through_the_cli(tmp_path: Path, meds_dir: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    tokens = {
        name: certified_token(home, name, role)
        for name, role in [
            ("ivy", "investigator"),
            ("erin", "examiner"),
            ("ezra", "examiner"),
            ("sam", "supervisor"),
        ]
    }
    services = make_services(home)
    for name, subject in [("S001-01", "S001"), ("S001-02", "S001"), ("S002-01", "S002")]:
        data = (meds_dir / f"{name}-t10_01.jpg").read_bytes()
        enroll_photo(services, SYSTEM, data, name, BookingRef(subject, name, agency="MEDS"))
    services.db.dispose()

    def as_(who: str, *args: str) -> str:
        result = run(home, *args, token=tokens[who])
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    def refused(who: str, code: str, *args: str) -> None:
        one_error_line(run(home, *args, token=tokens[who]), code)

    as_("ivy", "case", "open", "C-9", "--offence", "robbery")
    probe = str(meds_dir / "S001-03-t10_01.jpg")
    assert "search 1: candidates_ready" in as_(
        "ivy", "search", probe, "--case", "C-9", *SEARCH_ARGS, "--top", "2"
    )
    refused("ivy", "forbidden", "review", "show", "1")
    assert "examiner review" in as_("sam", "review", "queue")
    as_("sam", "review", "assign", "1", "--examiner", "erin")
    shown = as_("erin", "review", "show", "1", "--images", str(out))
    assert "blind: shuffled" in shown and "hidden" in shown
    assert len(list(out.glob("search-1-*"))) == 3  # the probe and both candidates
    lead = "S001=possible-lead:scar over the left brow, same ear helix"
    refused(
        "erin", "features_required", "review", "dispose", "1", "--set", lead, "--others", "exclude"
    )
    as_("erin", "review", "features", "1", "--compared", "face-shape,eyes,nose,mouth",
        "--not-visible", "ears")  # fmt: skip
    refused("erin", "unknown_disposition", "review", "dispose", "1", "--set", "S001=match")
    disposed = as_("erin", "review", "dispose", "1", "--set", lead, "--others", "exclude")
    assert "search 1: possible_lead" in disposed
    refused("ivy", "lead_not_verified", "lead", "report", "1", "--out", str(out))
    refused("erin", "same_reviewer", "review", "verify", "1", "--set", lead)
    as_("sam", "review", "assign", "1", "--examiner", "ezra", "--role", "verifier")
    assert "S002" not in as_("ezra", "review", "show", "1")  # only the lead, blind
    as_("ezra", "review", "features", "1", "--compared", "eyes", "--compared", "nose,mouth,chin")
    verified = as_("ezra", "review", "verify", "1", "--set", "S001=possible-lead:same brow scar")
    assert "search 1: verified" in verified
    report = as_("ivy", "lead", "report", "1", "--out", str(out))
    assert "possible lead S001" in report and "Investigative lead only" in report
    assert (out / "lead-report-C-9-1.pdf").read_bytes().startswith(b"%PDF")
    refused("ivy", "derived_from_face_match", "corroborate", "add", "1", "--type", "photo-lineup",
            "--description", "Victim picked him from six photos")  # fmt: skip
    plate = "Plate 7ABC123 seen at the scene is registered to him"
    added = as_("ivy", "corroborate", "add", "1", "--type", "vehicle-information",
                "--description", plate)  # fmt: skip
    assert "status corroborated" in added
    refused("ivy", "outcome_required", "case", "outcome", "C-9", "--search", "1")
    refused("ivy", "outcome_required", "case", "close", "C-9")
    closed = as_("ivy", "case", "outcome", "C-9", "--search", "1", "--outcome", "confirmed",
                 "--notes", "Plate and phone records place him at the scene")  # fmt: skip
    assert "closed (confirmed)" in closed
    refused("ivy", "forbidden", "case", "disclose", "C-9", "--out", str(out))
    as_("sam", "case", "disclose", "C-9", "--out", str(out))
    (package,) = out.glob("disclosure-C-9-*.zip")
    assert "SHA256SUMS" in zipfile.ZipFile(package).namelist()
