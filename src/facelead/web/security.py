"""Who is asking, and is this form really theirs: sessions, CSRF and upload limits.

- The session cookie holds a session token of the identity service
  (``open_session``); it is HttpOnly and SameSite=Strict, Secure over https
  (``__Host-`` prefixed then, so no subdomain can plant or read it).
- Every POST carries the session's synchroniser token (derived from the
  session token, see ``sessions.csrf_token_for``) in a hidden field,
  compared in constant time; a POST whose ``Origin`` names another site is
  refused before that. The login form, which has no session yet, uses a
  double-submit cookie instead (login CSRF would sign a victim in as the
  attacker).
- Form bodies are refused by their declared length before being read.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from facelead.domain.access import Actor
from facelead.errors import AuthenticationError, FaceLeadError
from facelead.services.identity import authenticate_token
from facelead.web.context import web_app
from facelead.web.sessions import PageState, csrf_token_for

SESSION_COOKIE = "facelead_session"
LOGIN_COOKIE = "facelead_login"
CSRF_FIELD = "csrf_token"
FORM_OVERHEAD = 256 * 1024  # multipart boundaries and the other fields besides the probe
SMALL_FORM = 256 * 1024


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login form."""

    def __init__(self, reason: str = "missing") -> None:
        super().__init__(reason)
        self.reason = reason


class WebRefusal(FaceLeadError):
    """Refused by the web layer itself, before any service (so not in the audit log)."""


class CsrfRejected(WebRefusal):
    code = "csrf_rejected"
    http_status = 403


class TooLarge(WebRefusal):
    code = "upload_too_large"
    http_status = 413


@dataclass(frozen=True)
class WebSession:
    """This request's session: its token (from the cookie), actor and page state."""

    token: str
    actor: Actor
    state: PageState

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.token)

    def csrf_matches(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf_token, submitted or "")


REASONS = {
    "token_expired": "expired",
    "token_revoked": "ended",
    "account_disabled": "disabled",
}


def cookie_name(secure: bool) -> str:
    return f"__Host-{SESSION_COOKIE}" if secure else SESSION_COOKIE


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(cookie_name(web_app(request).cookie_secure(request)))


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """No Max-Age: the cookie dies with the browser; the token's expiry does the rest."""
    secure = web_app(request).cookie_secure(request)
    response.set_cookie(
        cookie_name(secure), token, path="/", secure=secure, httponly=True, samesite="strict"
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    secure = web_app(request).cookie_secure(request)
    response.delete_cookie(
        cookie_name(secure), path="/", secure=secure, httponly=True, samesite="strict"
    )


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def web_session(request: Request) -> WebSession:
    """The caller's live session, or a redirect to log in.

    The identity service checks the token on every request (revoked, expired
    after 30 idle minutes, account disabled) and slides its idle deadline;
    the actor is rebuilt from the account each time.
    """
    token = session_cookie(request)
    if not token:
        raise LoginRequired("missing")
    app = web_app(request)
    try:
        actor = authenticate_token(
            app.services, token, client_of(request), interface="web", now=app.clock()
        )
    except AuthenticationError as exc:
        app.pages.drop(token)
        raise LoginRequired(REASONS.get(exc.code, "missing")) from None
    session = WebSession(token, actor, app.pages.for_token(token))
    request.state.web_session = session
    return session


SessionDep = Annotated[WebSession, Depends(web_session)]


def current_actor(session: SessionDep) -> Actor:
    return session.actor


def page_state(session: SessionDep) -> PageState:
    return session.state


ActorDep = Annotated[Actor, Depends(current_actor)]
StateDep = Annotated[PageState, Depends(page_state)]


def check_origin(request: Request) -> None:
    """A browser names the page a POST came from; another site's pages may not post here."""
    origin = request.headers.get("origin")
    if origin is None:  # not sent by older browsers; SameSite=Strict and the token remain
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise CsrfRejected("this form was not sent from a FaceLead page", code="csrf_rejected")


def check_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise TooLarge("a form must declare its length", code="length_required")
    if int(declared) > limit:
        raise TooLarge(f"the form is larger than {limit // 1024} KiB", code="upload_too_large")


async def read_form(request: Request, limit: int) -> FormData:
    """The form, once its declared length and origin passed (the body is read only then)."""
    check_length(request, limit)
    check_origin(request)
    return await request.form(max_files=1, max_fields=200)


async def verified_form(request: Request, session: SessionDep) -> FormData:
    """A small form (no upload) of the caller's own session."""
    form = await read_form(request, SMALL_FORM)
    require_csrf(session, form)
    return form


async def upload_form(request: Request, session: SessionDep) -> FormData:
    """A form carrying the probe: limited to the configured upload size plus the fields."""
    limit = web_app(request).services.settings.max_upload_bytes + FORM_OVERHEAD
    form = await read_form(request, limit)
    require_csrf(session, form)
    return form


def require_csrf(session: WebSession, form: FormData) -> None:
    token = form.get(CSRF_FIELD)
    if not session.csrf_matches(token if isinstance(token, str) else None):
        raise CsrfRejected("the form's security token is missing or stale: reload the page")


FormDep = Annotated[FormData, Depends(verified_form)]
UploadDep = Annotated[FormData, Depends(upload_form)]


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def login_token_matches(request: Request, submitted: str | None) -> bool:
    """Double-submit: the form's token equals the one in the login cookie."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    return bool(cookie and submitted) and hmac.compare_digest(cookie or "", submitted or "")


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    secure = web_app(request).cookie_secure(request)
    response.set_cookie(
        LOGIN_COOKIE, token, path="/login", secure=secure, httponly=True, samesite="strict"
    )
