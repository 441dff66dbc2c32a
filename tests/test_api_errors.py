"""Every error is JSON ``{code, message}`` with its status, and every response has its headers.

No face model is loaded here: each refusal happens before a probe would be
decoded or searched. The upload limit is checked at the ASGI level, with a
``receive`` that proves the body was never read.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from facelead.api.app import MULTIPART_OVERHEAD, create_app
from tests.conftest import Api

# HTTP-level behaviour, the same whatever the database: SQLite only (the services'
# refusals themselves are tested on both backends elsewhere).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SECURITY_HEADERS = {
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cache-control",
}
SEARCH_FORM = {
    "case": "LA-ERR-1",
    "purpose": "criminal-investigation",
    "justification": "Armed robbery of a pharmacy, suspect seen on the shop camera",
    "source": "cctv-still",
    "obtained_by": "DVR export by Det. Ruiz",
    "captured_by": "pharmacy CCTV",
}


def assert_secure(headers: Any) -> None:
    assert {name.lower() for name in headers} >= SECURITY_HEADERS
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def open_case(api: Api, number: str = "LA-ERR-1") -> None:
    body = {"number": number, "offence_category": "robbery"}
    api.call("ivy", "POST", "/cases", 201, json=body)


def test_authentication_errors(api: Api) -> None:
    response = api.call(None, "GET", "/cases/{n}", 401, "unauthenticated", path={"n": "X-1"})
    assert response.headers["www-authenticate"] == "Bearer"
    assert_secure(response.headers)
    basic = {"Authorization": "Basic aXZ5OnBhc3N3b3Jk"}
    api.call(None, "GET", "/auth/me", 401, "unauthenticated", headers=basic)
    forged = {"Authorization": "Bearer fl_not-a-token-anyone-was-given"}
    api.call(None, "GET", "/auth/me", 401, "token_invalid", headers=forged)


def test_refusals_by_status(api: Api) -> None:
    forbidden = api.call("ivy", "GET", "/audit/verify", 403, "forbidden")
    assert forbidden.json()["details"] == {"action": "audit.verify"}
    assert_secure(forbidden.headers)
    api.call("ivy", "GET", "/cases/{n}", 404, "case_not_found", path={"n": "NOPE-1"})
    api.call("ivy", "GET", "/searches/{id}", 404, "search_not_found", path={"id": 424242})
    open_case(api)
    api.call("ivy", "POST", "/cases/{n}/close", 200, path={"n": "LA-ERR-1"})
    api.call("ivy", "POST", "/cases/{n}/close", 409, "case_already_closed", path={"n": "LA-ERR-1"})
    bad_number = {"number": "not a case number!", "offence_category": "robbery"}
    api.call("ivy", "POST", "/cases", 422, "invalid_case_number", json=bad_number)
    missing = api.call("ivy", "POST", "/cases", 422, "invalid_request", json={"number": "X-2"})
    error = missing.json()["details"]["errors"][0]
    assert error["loc"] == ["body", "offence_category"] and "input" not in error
    api.call(
        "ivy",
        "POST",
        "/cases",
        422,
        "invalid_request",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    api.call("ivy", "GET", "/searches/{id}", 422, "invalid_request", path={"id": 2**40})
    api.call("ivy", "GET", "/cases/{n}", 422, "invalid_request", path={"n": "NUL%00-1"})


def test_unknown_route_and_wrong_method_are_json(api: Api) -> None:
    missing = api.client.get("/api/v1/no/such/route")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert_secure(missing.headers)
    wrong = api.client.delete("/api/v1/review/queue", headers=api.auth("sam"))
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "GET"


def test_upload_refusals(api: Api) -> None:
    open_case(api)
    as_json = api.call("ivy", "POST", "/searches", 415, "unsupported_media_type", json=SEARCH_FORM)
    assert_secure(as_json.headers)
    text = {"probe": ("probe.jpg", b"not an image at all, just text", "image/jpeg")}
    api.call("ivy", "POST", "/searches", 415, "unsupported_format", data=SEARCH_FORM, files=text)
    video = {"probe": ("clip.jpg", b"\x00\x00\x00\x18ftypmp42" + bytes(64), "image/jpeg")}
    api.call("ivy", "POST", "/searches", 415, "video_not_allowed", data=SEARCH_FORM, files=video)
    broken = {"Content-Type": "multipart/form-data; boundary=xyz"}
    api.call("ivy", "POST", "/searches", 400, "bad_request", content=b"--nope", headers=broken)

    # Two probes in one request: refused by the service's one-probe rule, and audited.
    two = [
        ("probe", ("a.jpg", b"first", "image/jpeg")),
        ("probe", ("b.jpg", b"second", "image/jpeg")),
    ]
    api.call("ivy", "POST", "/searches", 422, "batch_not_allowed", data=SEARCH_FORM, files=two)
    with api.services.db.engine.connect() as conn:
        outcome = conn.scalar(
            sa.text("SELECT outcome FROM audit_events WHERE actor='ivy' ORDER BY seq DESC LIMIT 1")
        )
    assert outcome == "refused:batch_not_allowed"
    # Enrolment takes one photo per request too.
    booking = {"subject_id": "S1", "booking_number": "S1-1"}
    photos = [("image", ("a.jpg", b"a", "image/jpeg")), ("extra", ("b.jpg", b"b", "image/jpeg"))]
    api.call(
        "rita", "POST", "/gallery/photos", 422, "one_image_per_request", data=booking, files=photos
    )


def test_rate_limit_is_429(api: Api) -> None:
    open_case(api)
    api.services.settings.daily_search_limit = 0
    probe = {"probe": ("p.jpg", b"never decoded", "image/jpeg")}
    api.call("ivy", "POST", "/searches", 429, "rate_limited", data=SEARCH_FORM, files=probe)


def asgi_call(
    app: FastAPI, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[str, str], dict[str, Any], int]:
    """POST /api/v1/searches straight through ASGI; returns status, headers, body, reads."""
    reads = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if reads > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[reads - 1], "more_body": reads < len(chunks)}

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
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    names = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], names, json.loads(body), reads


def test_upload_limit_before_the_body_is_read(api: Api) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    limit = api.services.settings.max_upload_bytes + MULTIPART_OVERHEAD
    declared = [(b"content-length", str(limit + 1).encode()), (b"content-type", b"image/jpeg")]
    status, headers, body, reads = asgi_call(app, declared, [b"x"])
    assert (status, body["code"], reads) == (413, "payload_too_large", 0)
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"

    # No Content-Length (chunked): refused once the bytes received pass the limit.
    streamed = [(b"content-type", b"multipart/form-data; boundary=b"), *api_auth(api, "ivy")]
    head = (
        b'--b\r\nContent-Disposition: form-data; name="probe"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    chunk = b"x" * (1024 * 1024)
    chunks = [head] + [chunk] * (limit // len(chunk) + 2)
    status, _, body, reads = asgi_call(app, streamed, chunks)
    assert (status, body["code"]) == (413, "payload_too_large")
    assert reads == limit // len(chunk) + 2  # stopped at the first chunk over the limit

    small = api.services.settings.max_upload_bytes
    api.services.settings.max_upload_bytes = 1000
    try:
        tight = TestClient(create_app(api.services, web=False))
        big = {"probe": ("p.jpg", b"x" * 70_000, "image/jpeg")}
        response = tight.post(
            "/api/v1/searches", data=SEARCH_FORM, files=big, headers=api.auth("ivy")
        )
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    finally:
        api.services.settings.max_upload_bytes = small


def api_auth(api: Api, who: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {api.tokens[who]}".encode())]


def test_unexpected_error_is_a_json_500_without_traceback(api: Api) -> None:
    app = create_app(api.services, web=False)

    @app.get("/api/v1/test-only/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/facelead")

    response = TestClient(app, raise_server_exceptions=False).get("/api/v1/test-only/boom")
    assert response.status_code == 500
    assert response.json() == {
        "code": "internal_error",
        "message": "internal error; the server log has the details",
    }
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert_secure(response.headers)


def test_openapi_document(api: Api) -> None:
    response = api.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert_secure(response.headers)
    spec = response.json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    error = spec["paths"]["/api/v1/cases"]["post"]["responses"]["422"]
    assert error["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert api.client.get("/docs").status_code == 404  # no CDN-loaded pages on this server
