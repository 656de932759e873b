"""Twilio's conventions for every route: HTTP Basic auth and Twilio-shaped JSON errors.

Everything under ``/v1`` and :data:`HOSTSIM_PREFIX` needs ``AccountSid:AuthToken``
(401/20003 with ``WWW-Authenticate`` otherwise; both parts are always compared,
so the time taken does not reveal the account sid). A request other than GET/HEAD
whose ``Origin`` is not the API's own is 403/20403 (a browser that has the
credentials cached, e.g. for the console, would send them along with a
cross-site form). Errors are JSON
``{code, message, more_info, status}``: an :class:`ApiError` raised by a
handler as it is; aiohttp's own 404/405 (with ``Allow``) and others mapped to
Twilio codes; any other exception logged and answered 500/20500.

The request helpers here read form fields and query parameters the same way
for every route: an empty value counts as absent, a file upload is refused.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web
from aiohttp.typedefs import Handler

if TYPE_CHECKING:
    from hostsim.cloud.api.control import ControlledGateway
    from hostsim.cloud.network import Network

LOGGER = logging.getLogger(__name__)

#: Routes of hostsim's own (non-Twilio) controls live under this prefix.
HOSTSIM_PREFIX = "/_hostsim"
REALM = 'Basic realm="Twilio API"'
_CODE_BY_STATUS = {401: 20003, 403: 20403, 404: 20404, 405: 20004, 409: 20409, 429: 20429}

NETWORK_KEY: web.AppKey[Network[ControlledGateway]] = web.AppKey("network")
TOKEN_KEY = web.AppKey("auth_token", str)


class ApiError(Exception):
    """An API failure, answered as Twilio-shaped JSON by the middleware."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> NoReturn:
    raise ApiError(400, 20001, message)


def error_response(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The JSON error body Twilio sends: exactly ``code, message, more_info, status``."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def base_url(request: web.Request) -> str:
    """``scheme://host`` of the API as the client reached it."""
    return f"{request.scheme}://{request.host}"


def form_value(form: Mapping[str, object], name: str) -> str | None:
    """The plain form field ``name``; None when absent or empty; 400 for a file upload."""
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        invalid(f"{name} must be a plain form field")
    return value


def required(form: Mapping[str, object], name: str) -> str:
    """The form field ``name``; 400 when missing or empty."""
    if form.get(name) is None:
        invalid(f"Missing required parameter {name} in the post body")
    value = form_value(form, name)
    if value is None:
        invalid(f"{name} must not be empty")
    return value


async def read_form(request: web.Request) -> Mapping[str, object]:
    """The post body's form fields; 400 when unreadable."""
    try:
        return await request.post()
    except ValueError as exc:
        invalid(f"Unreadable post body: {exc}")


def authorized(request: web.Request) -> bool:
    """The request carries this API's credentials (ApiError 401 when it carries none)."""
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(401, 20003, "Authentication Error - No credentials provided")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        login, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except ValueError:  # binascii.Error is a ValueError
        return False
    if not sep:
        return False
    account = request.app[NETWORK_KEY].account_sid.encode()
    token = request.app[TOKEN_KEY].encode()
    # Both compared, always: no early exit that would time the account sid.
    ok_account = hmac.compare_digest(login, account)
    ok_token = hmac.compare_digest(password, token)
    return ok_account and ok_token


@web.middleware
async def twilio_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth on ``/v1`` and ``/_hostsim``, and every error (ours or aiohttp's) as Twilio JSON."""
    challenge = {"WWW-Authenticate": REALM}
    try:
        origin = request.headers.get("Origin")
        if request.method not in ("GET", "HEAD") and origin not in (None, base_url(request)):
            # A browser's cross-site form post would carry its cached Basic credentials.
            raise ApiError(403, 20403, f"Cross-origin request from {origin} refused")
        protected = any(
            request.path == prefix or request.path.startswith(prefix + "/")
            for prefix in ("/v1", HOSTSIM_PREFIX)
        )
        if protected and not authorized(request):
            raise ApiError(401, 20003, "Authenticate: the AccountSid or AuthToken is incorrect")
        return await handler(request)
    except ApiError as exc:
        headers = challenge if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _CODE_BY_STATUS.get(exc.status, 20001 if exc.status < 500 else 20500)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 404:
            message = f"The requested resource {request.path} was not found"
        elif exc.status == 405:
            message = f"Method {request.method} not allowed on {request.path}"
        else:
            message = exc.reason
        return error_response(exc.status, code, message, headers)
    except Exception:
        LOGGER.exception("API request %s %s failed", request.method, request.path)
        return error_response(500, 20500, "Internal Server Error")
