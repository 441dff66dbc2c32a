"""The route class every page uses: refusals become pages, and every response is no-store.

Services raise ``FaceLeadError``; the API turns those into JSON, the web
application into an HTML page with the same code and status. Handling them
here, on the route, keeps the web pages independent of whatever exception
handlers the application registers for the API. Every response also gets
``Cache-Control: no-store`` (pages and images of an investigation must not
linger in a browser or proxy cache) and a strict content security policy.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from facelead.errors import FaceLeadError
from facelead.web.context import page, redirect
from facelead.web.security import LoginRequired, WebRefusal

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make chromium send Origin: null
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def login_redirect(request: Request, reason: str) -> Response:
    query = {"reason": reason}
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        query["next"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/login?" + urlencode(query))


def error_page(
    request: Request, status: int, code: str, message: str, audited: bool = True
) -> Response:
    return page(request, "error.html", status, code=code, message=message, audited=audited)


class WebRoute(APIRoute):
    """An ``APIRoute`` whose handler renders refusals and adds the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = login_redirect(request, exc.reason)
            except FaceLeadError as exc:
                audited = not isinstance(exc, WebRefusal)
                response = error_page(request, exc.http_status, exc.code, exc.message, audited)
            except RequestValidationError as exc:
                response = error_page(request, 422, "invalid_request", _first_error(exc), False)
            return secure(response)

        return route_handler


def _first_error(exc: RequestValidationError) -> str:
    errors: list[Any] = list(exc.errors())
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}"
