"""What every page uses: the template environment, who is signed in, CSRF, rendering.

Sessions live server-side (`web_sessions`); the cookie holds only a random token. A visitor
who has not signed in carries a random "anonymous" cookie that CSRF tokens of the sign-in
and reset forms are bound to. Every POST to a page router is checked by `verify_csrf`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import NotFound
from o2oloop.people import service as people
from o2oloop.people.models import Person
from o2oloop.web import i18n

SESSION_COOKIE = "o2o_session"
ANON_COOKIE = "o2o_visitor"
LOCALE_COOKIE = "o2o_locale"
CSRF_FIELD = "csrf_token"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "svg", "xml")),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.install_null_translations(newstyle=True)  # replaced per render by the reader's locale
    return env


templates = _environment()


class SignInRequired(Exception):
    """Raised by `signed_in` when no live session: the page redirects to sign-in and back."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRejected(Exception):
    """A POST whose form did not carry this browser's CSRF token."""


@dataclass
class Viewer:
    """The reader of a page: their locale and, when signed in, who they are."""

    locale: str
    person: Person | None = None
    session_id: str | None = None
    token: str | None = None  # the cookie's secret, to bind CSRF to
    anonymous: str | None = None
    new_anonymous: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def principal(self) -> Principal:
        if self.person is None:
            raise SignInRequired("/")
        return people.principal_of(self.person)

    @property
    def merchant_id(self) -> str:
        """The merchant whose console this is (404 for people without one)."""
        if self.person is None or self.person.merchant_id is None:
            raise NotFound("this page belongs to a merchant's console")
        return self.person.merchant_id

    @property
    def is_platform(self) -> bool:
        return self.person is not None and self.person.role is Role.PLATFORM_ADMIN


def _secret(request: Request) -> bytes:
    return request.app.state.settings.secret_key.encode()


def csrf_token(request: Request, viewer: Viewer) -> str:
    """HMAC of the browser's own cookie secret: unknowable to another site."""
    bound = viewer.token or viewer.anonymous or ""
    return hmac.new(_secret(request), f"csrf|{bound}".encode(), hashlib.sha256).hexdigest()


def cookie_secure(request: Request) -> bool:
    settings = request.app.state.settings
    configured = getattr(settings, "cookie_secure", None)
    if configured is not None:
        return bool(configured)
    return request.url.scheme == "https" or settings.env == "production"


def set_cookie(response: Response, request: Request, name: str, value: str, **kw: Any) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
        **kw,
    )


def resolve_viewer(request: Request) -> Viewer:
    """Who reads this page; cached on the request so several dependencies share it."""
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    chosen = request.cookies.get(LOCALE_COOKIE)
    viewer = Viewer(locale=i18n.negotiate(request.headers.get("accept-language"), chosen))
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        db: Database = request.app.state.db
        with db.reading() as session:
            found = people.session_person(session, token=token)
            if found is not None:
                web_session, person = found
                session.expunge_all()
        if found is not None:
            viewer.person, viewer.session_id, viewer.token = person, web_session.id, token
            if person.locale in i18n.LOCALES and chosen not in i18n.LOCALES:
                viewer.locale = person.locale
            if people.needs_touch(web_session):
                with db.transaction() as session:
                    people.touch(session, session_id=web_session.id)
    anonymous = request.cookies.get(ANON_COOKIE)
    if not anonymous or len(anonymous) > 64:
        anonymous, viewer.new_anonymous = secrets.token_urlsafe(24), True
    viewer.anonymous = anonymous
    request.state.viewer = viewer
    return viewer


def current_viewer(request: Request) -> Viewer:
    return resolve_viewer(request)


def signed_in(request: Request) -> Viewer:
    """A page for signed-in people: others are sent to sign in and brought back after."""
    viewer = resolve_viewer(request)
    if viewer.person is None:
        raise SignInRequired(_here(request))
    return viewer


def merchant_person(request: Request) -> Viewer:
    viewer = signed_in(request)
    _ = viewer.merchant_id  # people without a merchant get a 404 here
    return viewer


def _here(request: Request) -> str:
    if request.method != "GET":
        return request.url.path  # the form's own page
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def safe_next(next_url: str | None, default: str = "/console") -> str:
    """Only a path on this site: never an open redirect."""
    if not next_url:
        return default
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or not next_url.startswith("/") or next_url.startswith("//"):
        return default
    return next_url


def sign_in_url(next_url: str) -> str:
    return "/signin?next=" + quote(safe_next(next_url), safe="/")


async def verify_csrf(request: Request) -> None:
    """Every POST to a page carries the form field `csrf_token`; without it, nothing runs."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    viewer = await _viewer_in_thread(request)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(request, viewer)):
        raise CsrfRejected()


async def _viewer_in_thread(request: Request) -> Viewer:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(resolve_viewer, request)


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (files left out), already CSRF-checked."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


async def form_lists(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


CSRF = [Depends(verify_csrf)]
Reader = Annotated[Viewer, Depends(current_viewer)]
SignedIn = Annotated[Viewer, Depends(signed_in)]
MerchantPerson = Annotated[Viewer, Depends(merchant_person)]
Form = Annotated[dict[str, str], Depends(form_data)]
FormLists = Annotated[dict[str, list[str]], Depends(form_lists)]


FLASH_MESSAGES = {
    "saved": "Saved.",
    "created": "Created.",
    "published": "Published: customers can claim it now.",
    "paused": "Paused: no new claims or redemptions until you resume.",
    "ended": "Ended.",
    "deactivated": "Switched off.",
    "launch": "Launched: codes go out to the audience, the holdout gets nothing.",
    "pause": "Paused: no more codes go out until you resume.",
    "resume": "Resumed.",
    "finish": "Finished: no more codes go out; the results keep counting visits.",
    "replied": "Your reply is published.",
    "replayed": "Queued to be sent again now.",
    "retried": "Pending again: the worker runs it within seconds.",
}


def _nav(viewer: Viewer) -> list[tuple[str, str]]:
    if viewer.person is None:
        return []
    t = i18n.translations(viewer.locale).gettext
    if viewer.person.merchant_id:
        items = [
            ("/console", t("Dashboard")),
            ("/console/offers", t("Offers")),
            ("/console/members", t("Members")),
            ("/console/money", t("Money")),
            ("/console/campaigns", t("Campaigns")),
            ("/console/reviews", t("Reviews")),
            ("/console/stores", t("Stores")),
        ]
        if viewer.person.role is Role.MERCHANT_ADMIN:
            items.append(("/console/staff", t("Staff")))
            items.append(("/console/webhooks", t("Webhooks")))
        return items
    return [("/admin", t("Platform"))]


def translators(locale: str) -> tuple[Any, Any]:
    """gettext and ngettext that also fill in `%(name)s` placeholders, as Jinja's do."""
    tr = i18n.translations(locale)

    def gettext(message: str, **values: Any) -> str:
        text = tr.gettext(message)
        return text % values if values else text

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
        return tr.ngettext(singular, plural, n) % {"num": n, **values}

    return gettext, ngettext


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    viewer: Viewer | None = None,
    timezone: str = "UTC",
) -> HTMLResponse:
    """A page in the reader's locale, with the CSRF token, navigation and formats."""
    viewer = viewer or resolve_viewer(request)
    gettext, ngettext = translators(viewer.locale)
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "person": viewer.person,
        "locale": viewer.locale,
        "html_lang": "zh-Hans" if viewer.locale == "zh_Hans" else "en",
        "locales": i18n.LOCALES,
        "fmt": i18n.Formats(viewer.locale, timezone),
        "csrf_token": csrf_token(request, viewer),
        "csrf_field": Markup(
            f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(request, viewer)}">'
        ),
        "nav": _nav(viewer),
        "path": request.url.path,
        "gettext": gettext,
        "ngettext": ngettext,
        "_": gettext,
        "errors": {},
        "values": {},
        "flash": request.query_params.get("done", ""),
        "flash_messages": FLASH_MESSAGES,
    }
    values.update(context or {})
    html = templates.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    if viewer.new_anonymous and viewer.anonymous:
        set_cookie(response, request, ANON_COOKIE, viewer.anonymous)
    return response


def redirect(url: str, *, done: str = "") -> RedirectResponse:
    """After a successful POST: see the result with a GET (post/redirect/get)."""
    if done:
        url += ("&" if "?" in url else "?") + "done=" + quote(done)
    return RedirectResponse(url, status_code=303)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:300]
