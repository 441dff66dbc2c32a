"""Audit routes: auditors (and supervisors where the matrix says so) read the log; each
reading is itself an audit event. Gallery counts are here too (no face model needed)."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import Api

ROUTES = {
    ("GET", "/audit/verify"),
    ("GET", "/audit/report"),
    ("GET", "/audit/export"),
    ("POST", "/audit/checkpoints"),
    ("GET", "/gallery/stats"),
}


def test_audit_routes_by_role(api: Api) -> None:
    api.call("ivy", "GET", "/audit/verify", 403, "forbidden")
    verified = api.call("audra", "GET", "/audit/verify", 200).json()
    assert verified["intact"] is True and verified["issues"] == []
    assert verified["events_checked"] >= 10  # installation, users, tokens, logins

    api.call("erin", "GET", "/audit/report", 403, "forbidden")
    report = api.call("audra", "GET", "/audit/report", 200)
    assert report.headers["content-type"].startswith("application/json")
    assert report.json()["integrity"].startswith("verified")
    page = api.call("sam", "GET", "/audit/report", 200, params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    naive = {"start": "2025-01-01T00:00:00"}
    api.call("audra", "GET", "/audit/report", 422, "bad_period", params=naive)
    api.call("audra", "GET", "/audit/report", 422, "invalid_request", params={"format": "pdf"})

    api.call("sam", "GET", "/audit/export", 403, "forbidden")  # export: auditors only
    exported = api.call("audra", "GET", "/audit/export", 200)
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert len(lines) == int(exported.headers["x-event-count"]) and lines[0]["seq"] == 1
    as_csv = api.call("audra", "GET", "/audit/export", 200, params={"format": "csv"})
    assert "seq" in next(csv.reader(io.StringIO(as_csv.text)))
    api.call("audra", "GET", "/audit/export", 422, "bad_period", params={"end": "2025-01-01"})

    api.call("sam", "POST", "/audit/checkpoints", 403, "forbidden")
    checkpoint = api.call("audra", "POST", "/audit/checkpoints", 201).json()
    assert checkpoint["seq"] >= verified["events_checked"] and checkpoint["signature"]

    api.call("ivy", "GET", "/gallery/stats", 403, "forbidden")
    stats = api.call("rita", "GET", "/gallery/stats", 200).json()
    assert stats["model_id"] == api.services.settings.model_id
    api.assert_covered(ROUTES)
