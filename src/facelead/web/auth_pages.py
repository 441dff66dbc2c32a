"""Logging in (password + TOTP), logging out, and the start page of each role."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from facelead.domain.access import Action
from facelead.errors import AuthenticationError
from facelead.services.identity import close_session, login, open_session
from facelead.web.context import page, redirect, web_app
from facelead.web.forms import text
from facelead.web.routing import WebRoute
from facelead.web.security import (
    LOGIN_COOKIE,
    SMALL_FORM,
    ActorDep,
    FormDep,
    SessionDep,
    StateDep,
    clear_session_cookie,
    client_of,
    login_token_matches,
    new_login_token,
    read_form,
    set_login_cookie,
    set_session_cookie,
)

router = APIRouter(route_class=WebRoute)

REASONS = {
    "expired": "Your session ended after 30 minutes without activity. Please log in again.",
    "disabled": "Your account is no longer active. Ask an administrator.",
    "logout": "You are logged out.",
    "ended": "Your session was ended (logged out elsewhere, or your account changed).",
}


def _safe_next(target: str) -> str:
    """Only a path on this site: never an open redirect to another one."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(
    request: Request, status: int = 200, error: str = "", username: str = "", next_: str = "/"
) -> Response:
    token = new_login_token()
    notice = REASONS.get(request.query_params.get("reason", ""), "")
    response = page(
        request,
        "login.html",
        status,
        login_token=token,
        error=error,
        notice=notice,
        username=username,
        next=_safe_next(next_),
    )
    set_login_cookie(request, response, token)
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request, next_=request.query_params.get("next", "/"))


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Password and TOTP code to a new session token; every refusal is audited by the service."""
    form = await read_form(request, SMALL_FORM)
    username, next_ = text(form, "username"), text(form, "next") or "/"
    if not login_token_matches(request, text(form, "login_token")):
        return _login_page(request, 403, "The login form expired: please try again.", username)
    password = form.get("password")
    try:
        token = await run_in_threadpool(
            _log_in,
            request,
            username,
            password if isinstance(password, str) else "",
            text(form, "totp"),
        )
    except AuthenticationError as exc:
        return _login_page(request, 401, f"{exc.message} [{exc.code}]", username, next_)
    response = redirect(_safe_next(next_))
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _log_in(request: Request, username: str, password: str, code: str) -> str:
    """Password + TOTP to an actor, then a fresh session token (never a reused one)."""
    app = web_app(request)
    now = app.clock()
    actor = login(
        app.services, username, password, code, client_of(request), interface="web", now=now
    )
    return open_session(app.services, actor, interface="web", now=now).token


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Revoke the session token at once (audited) and forget the page state."""
    app = web_app(request)
    close_session(app.services, session.actor, session.token)
    app.pages.drop(session.token)
    response = redirect("/login?reason=logout")
    clear_session_cookie(request, response)
    return response


@router.get("/")
def home(request: Request, actor: ActorDep, state: StateDep) -> Response:
    """Each role starts where its work is; the menu shows only what the role may do."""
    can = {action.value: actor.role_for(action) is not None for action in Action}
    return page(request, "home.html", can=can, recent_cases=state.recent_cases)
