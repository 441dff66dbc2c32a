"""What every page handler shares: services, sessions, templates, and how a page is rendered.

One ``WebApp`` per mounted application lives on ``app.state``; handlers
reach it through the request, so two applications (tests) never share
sessions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from facelead import DISCLAIMER, __version__
from facelead.domain.access import Action, Actor
from facelead.services.context import Services
from facelead.web.sessions import IDLE_TIMEOUT, PageStates, utc_now

if TYPE_CHECKING:
    from facelead.web.security import WebSession

PACKAGE_DIR = Path(str(files("facelead.web")))
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
STATE_KEY = "facelead_web"

NAV: tuple[tuple[str, str, Action], ...] = (
    ("/cases", "Cases", Action.CASE_OPEN),
    ("/search/new", "New search", Action.SEARCH_SUBMIT),
    ("/queue", "Review queue", Action.REVIEW_QUEUE),
    ("/audit", "Audit", Action.AUDIT_READ),
    ("/admin/users", "Users", Action.USER_READ),
    ("/admin/training", "Training", Action.TRAINING_CERTIFY),
)
"""Menu entries and the action each needs; the services still decide every request."""


@dataclass
class WebConfig:
    """``cookie_secure`` None: mark the cookie Secure exactly when the request came over https
    (behind a TLS proxy, run uvicorn with ``--proxy-headers``); True/False force it."""

    cookie_secure: bool | None = None


@dataclass
class Clock:
    """Now, plus an offset a test can move forward (the idle timeout without waiting)."""

    offset: dt.timedelta = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return utc_now() + self.offset


@dataclass
class WebApp:
    services: Services
    pages: PageStates
    templates: Jinja2Templates
    config: WebConfig
    clock: Clock

    def cookie_secure(self, request: Request) -> bool:
        if self.config.cookie_secure is not None:
            return self.config.cookie_secure
        return request.url.scheme == "https"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.globals.update(disclaimer=DISCLAIMER, version=__version__)
    env.filters["when"] = _when
    env.filters["label"] = lambda text: str(text).replace("_", " ").replace("-", " ")
    env.filters["q"] = lambda text: quote(str(text), safe="")
    return templates


def _when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def web_app(request: Request) -> WebApp:
    app: WebApp = getattr(request.app.state, STATE_KEY)
    return app


def session_of(request: Request) -> WebSession | None:
    session: WebSession | None = getattr(request.state, "web_session", None)
    return session


def nav_for(actor: Actor | None) -> list[tuple[str, str]]:
    if actor is None:
        return []
    return [(href, label) for href, label, action in NAV if actor.role_for(action) is not None]


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the chrome every page needs (menu, messages, CSRF token)."""
    app = web_app(request)
    session = session_of(request)
    actor = session.actor if session else None
    context.setdefault("show_disclaimer", False)
    context.update(
        actor=actor,
        nav=nav_for(actor),
        path=request.url.path,
        csrf_token=session.csrf_token if session else "",
        flashes=session.state.pop_flashes() if session else [],
        idle_seconds=int(IDLE_TIMEOUT.total_seconds()),
    )
    response: HTMLResponse = app.templates.TemplateResponse(
        request, template, context, status_code=status
    )
    return response


def redirect(url: str) -> RedirectResponse:
    """See other: a form post always ends in a GET (no resubmission on reload)."""
    return RedirectResponse(url, status_code=303)
