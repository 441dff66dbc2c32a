"""Administration: accounts (with their one-time MFA enrolment) and training certification.

A new account's TOTP secret is shown once, on the page answering the form
that created it (never in a redirect, a log or a later page), exactly as the
service returns it once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from facelead.domain.access import Role
from facelead.domain.identity import MfaEnrolment, UserView
from facelead.errors import FaceLeadError, InputError
from facelead.services.identity import (
    add_user,
    certify_user,
    disable_user,
    enable_user,
    list_users,
    reset_mfa,
)
from facelead.web.context import page, web_app
from facelead.web.forms import date, done, refused, text, texts
from facelead.web.routing import WebRoute
from facelead.web.security import ActorDep, FormDep, StateDep

router = APIRouter(route_class=WebRoute)

EXPIRING_DAYS = 30
TRAINED_ROLES = frozenset({Role.INVESTIGATOR, Role.EXAMINER, Role.SUPERVISOR})


def _users_page(
    request: Request, actor: Any, draft: dict[str, str], enrolment: MfaEnrolment | None = None
) -> Response:
    users = list_users(web_app(request).services, actor)
    now = dt.datetime.now(dt.UTC)
    return page(
        request,
        "admin_users.html",
        users=users,
        roles=[r.value for r in Role],
        enrolment=enrolment,
        draft=draft,
        now=now,
    )


@router.get("/admin/users")
def users_page(request: Request, actor: ActorDep, state: StateDep) -> Response:
    return _users_page(request, actor, state.pop_draft("add_user"))


@router.post("/admin/users")
def add_user_submit(request: Request, actor: ActorDep, state: StateDep, form: FormDep) -> Response:
    password = form.get("password")
    try:
        enrolment = add_user(
            web_app(request).services,
            actor,
            text(form, "username"),
            password if isinstance(password, str) else "",
            texts(form, "roles"),
            text(form, "agency"),
            agency_name=text(form, "agency_name") or None,
        )
    except FaceLeadError as exc:
        return refused(state, exc, "/admin/users", form, "add_user")
    state.flash("success", f"Account {enrolment.user.username} created.")
    return _users_page(request, actor, {}, enrolment)


@router.post("/admin/users/{username}/{change}")
def change_user(
    request: Request,
    username: str,
    change: str,
    actor: ActorDep,
    state: StateDep,
    form: FormDep,
) -> Response:
    """Disable (also revokes tokens and ends web sessions), enable, or reset MFA."""
    services = web_app(request).services
    try:
        if change == "reset-mfa":
            enrolment = reset_mfa(services, actor, username)
            state.flash("success", f"New MFA secret for {username}; the old one no longer works.")
            return _users_page(request, actor, {}, enrolment)
        if change == "disable":
            view = disable_user(services, actor, username)
        elif change == "enable":
            view = enable_user(services, actor, username)
        else:
            return refused(state, _unknown(change), "/admin/users")
    except FaceLeadError as exc:
        return refused(state, exc, "/admin/users")
    now = "disabled" if view.disabled else "enabled"
    return done(state, f"Account {view.username} {now}.", "/admin/users")


def _unknown(change: str) -> FaceLeadError:
    return InputError(f"unknown account change {change!r}", code="invalid_change")


@dataclass(frozen=True)
class TrainingRow:
    user: UserView
    state: str


ORDER = {"lapsed": 0, "missing": 1, "lapsing": 2, "current": 3, "not needed": 4}


def _state(until: dt.date | None, roles: tuple[Role, ...], today: dt.date) -> str:
    """Lapsed and missing certificates block searching and reviewing: listed first."""
    if until is None:
        return "missing" if TRAINED_ROLES.intersection(roles) else "not needed"
    if until < today:
        return "lapsed"
    return "lapsing" if (until - today).days <= EXPIRING_DAYS else "current"


@router.get("/admin/training")
def training_page(request: Request, actor: ActorDep, state: StateDep) -> Response:
    """Who may search and review: certification per user, lapsed and lapsing ones first."""
    today = dt.date.today()
    users = list_users(web_app(request).services, actor)
    rows = sorted(
        (TrainingRow(user, _state(user.certified_until, user.roles, today)) for user in users),
        key=lambda row: (ORDER[row.state], row.user.username),
    )
    default_until = (today + dt.timedelta(days=365)).isoformat()
    return page(request, "admin_training.html", rows=rows, default_until=default_until)


@router.post("/admin/training/{username}")
def certify_submit(
    request: Request, username: str, actor: ActorDep, state: StateDep, form: FormDep
) -> Response:
    try:
        until = date(text(form, "until"), "certified until")
        view = certify_user(web_app(request).services, actor, username, until)
    except FaceLeadError as exc:
        return refused(state, exc, "/admin/training")
    return done(
        state,
        f"{view.username} certified until {until.isoformat()}.",
        "/admin/training",
    )
