"""Reading submitted forms, and answering a refused one (post/redirect/get with a message)."""

from __future__ import annotations

import datetime as dt

from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile

from facelead.errors import FaceLeadError, InputError
from facelead.web.context import redirect
from facelead.web.security import CSRF_FIELD
from facelead.web.sessions import PageState

MAX_FIELD_CHARS = 4000


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def checked(form: FormData, name: str) -> bool:
    return text(form, name) in ("1", "on", "true", "yes")


def integer(form: FormData, name: str) -> int | None:
    value = text(form, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name} must be a whole number", code="invalid_number") from None


def date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{name}: give a date as YYYY-MM-DD", code="invalid_date") from None


def upload(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    if isinstance(value, UploadFile) and value.filename:
        return value
    return None


def draft_of(form: FormData) -> dict[str, str]:
    """The typed values of a form (never its token or files), to refill it after a refusal."""
    return {
        key: value[:MAX_FIELD_CHARS]
        for key, value in form.multi_items()
        if isinstance(value, str) and key != CSRF_FIELD and "password" not in key
    }


def message_of(exc: FaceLeadError) -> str:
    return f"{exc.message} [{exc.code}]"


def refused(
    state: PageState,
    exc: FaceLeadError,
    back: str,
    form: FormData | None = None,
    form_key: str | None = None,
) -> RedirectResponse:
    """Show the refusal on the page the form came from, with what the user had typed."""
    state.flash("error", message_of(exc))
    if form is not None and form_key:
        state.drafts[form_key] = draft_of(form)
    return redirect(back)


def done(state: PageState, message: str, to: str) -> RedirectResponse:
    state.flash("success", message)
    return redirect(to)
