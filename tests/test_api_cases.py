"""Case routes: each allowed for its role and refused (403) for another, with real tokens.

Outcomes need a search with candidates, so they are covered by the MEDS
workflow (test_api_workflow.py).
"""

from __future__ import annotations

import hashlib
import io
import zipfile

from facelead.services import identity as identity_service
from tests.conftest import USER_PASSWORD, Api

ROUTES = {
    ("POST", "/cases"),
    ("GET", "/cases/{number}"),
    ("POST", "/cases/{number}/close"),
    ("POST", "/cases/{number}/quality-overrides"),
    ("POST", "/cases/{number}/disclosure"),
}
NUMBER = "LA/2025/0007"  # agency formats may contain '/'


def test_case_routes_by_role(api: Api) -> None:
    new_case = {"number": NUMBER, "offence_category": "robbery"}
    api.call("erin", "POST", "/cases", 403, "forbidden", json=new_case)
    opened = api.call("ivy", "POST", "/cases", 201, json=new_case).json()
    assert (opened["number"], opened["status"], opened["opened_by"]) == (NUMBER, "open", "ivy")
    api.call("ivy", "POST", "/cases", 409, json=new_case)

    case = {"number": NUMBER}
    api.call("rita", "GET", "/cases/{number}", 403, "forbidden", path=case)
    shown = api.call("erin", "GET", "/cases/{number}", 200, path=case).json()
    assert shown["case"]["number"] == NUMBER and shown["searches"] == []

    override = {
        "probe_sha256": hashlib.sha256(b"a dark cctv still").hexdigest(),
        "requester": "ivy",
        "justification": "Only image of the suspect; the victim is still missing",
    }
    route = "/cases/{number}/quality-overrides"
    api.call("ivy", "POST", route, 403, "forbidden", path=case, json=override)
    granted = api.call("sam", "POST", route, 201, path=case, json=override).json()
    assert granted["override_id"] >= 1 and granted["requester"] == "ivy"

    api.call("erin", "POST", "/cases/{number}/close", 403, "forbidden", path=case)
    closed = api.call("ivy", "POST", "/cases/{number}/close", 200, path=case).json()
    assert closed["status"] == "closed" and closed["closed_by"] == "ivy"

    api.call("ivy", "POST", "/cases/{number}/disclosure", 403, "forbidden", path=case)
    package = api.call("sam", "POST", "/cases/{number}/disclosure", 200, path=case)
    assert package.headers["content-type"] == "application/zip"
    assert package.headers["x-package-sha256"] == hashlib.sha256(package.content).hexdigest()
    assert "attachment" in package.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        assert {"case.json", "manifest.json", "SHA256SUMS"} <= set(archive.namelist())
    api.assert_covered(ROUTES)

    # Another agency's case: the domain's agency rule, a policy refusal (422), not a role one.
    identity_service.add_user(
        api.services, api.installed.admin, "otto", USER_PASSWORD,
        ["investigator"], "LAPD", agency_name="Los Angeles Police Department",
    )  # fmt: skip
    otto = identity_service.issue_token(api.services, api.installed.admin, "otto", days=1)
    api.tokens["otto"] = otto.token
    api.call("ivy", "POST", "/cases", 201, json={"number": "LA-9", "offence_category": "fraud"})
    api.call("otto", "POST", "/cases/{n}/close", 422, "case_agency_mismatch", path={"n": "LA-9"})
