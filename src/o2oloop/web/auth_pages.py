"""Sign-in, sign-out, password reset and the language switch."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.db import Database
from o2oloop.errors import InvalidInput
from o2oloop.notify.email import OutgoingEmail
from o2oloop.people import service as people
from o2oloop.web import framework, i18n
from o2oloop.web.framework import CSRF, Form, Reader

log = logging.getLogger("o2oloop.web")
router = APIRouter(include_in_schema=False, dependencies=CSRF)


def _db(request: Request) -> Database:
    return request.app.state.db


def _home(viewer: framework.Viewer) -> str:
    if viewer.person is not None and viewer.person.merchant_id is None:
        return "/admin"
    return "/console"


@router.get("/")
def root(viewer: Reader) -> Response:
    return framework.redirect(_home(viewer) if viewer.person else "/signin")


@router.get("/signin")
def sign_in_page(request: Request, viewer: Reader, next: str = "") -> Response:
    if viewer.person is not None:
        return framework.redirect(framework.safe_next(next, _home(viewer)))
    return framework.render(
        request, "auth/signin.html", {"next": framework.safe_next(next), "values": {}}
    )


_REFUSALS = {
    "invalid": "The email or password is not right.",
    "inactive": "This sign-in has been switched off. Ask your admin.",
    "rate_limited": "Too many attempts. Wait 15 minutes, or reset your password.",
}


@router.post("/signin")
def sign_in(request: Request, viewer: Reader, form: Form) -> Response:
    email, password = form.get("email", ""), form.get("password", "")
    next_url = framework.safe_next(form.get("next"))
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = "Enter your email."
    if not password:
        errors["password"] = "Enter your password."
    if not errors:
        with _db(request).transaction() as session:
            outcome = people.sign_in(
                session,
                email=email,
                password=password,
                ip=framework.client_ip(request),
                user_agent=framework.user_agent(request),
            )
        if outcome.token is not None and outcome.person is not None:
            if next_url == "/console" and outcome.person.merchant_id is None:
                next_url = "/admin"
            response = framework.redirect(next_url)
            # A new token every sign-in; whatever session cookie came in is dropped.
            framework.set_cookie(
                response,
                request,
                framework.SESSION_COOKIE,
                outcome.token,
                max_age=int(people.SESSION_MAX.total_seconds()),
            )
            if viewer.token:
                with _db(request).transaction() as session:
                    people.sign_out(session, token=viewer.token)
            return response
        errors["__all__"] = _REFUSALS[outcome.refused or "invalid"]
    status = 429 if outcome_refused(errors) else 422
    return framework.render(
        request,
        "auth/signin.html",
        {"next": next_url, "values": {"email": email}, "errors": errors},
        status=status,
    )


def outcome_refused(errors: dict[str, str]) -> bool:
    return errors.get("__all__") == _REFUSALS["rate_limited"]


@router.post("/signout")
def sign_out(request: Request, viewer: Reader) -> Response:
    if viewer.token:
        with _db(request).transaction() as session:
            people.sign_out(session, token=viewer.token, ip=framework.client_ip(request))
    response = framework.redirect("/signin", done="signed_out")
    response.delete_cookie(framework.SESSION_COOKIE, path="/")
    return response


@router.post("/locale")
def switch_locale(request: Request, viewer: Reader, form: Form) -> Response:
    locale = form.get("locale", "")
    back = framework.safe_next(form.get("next"), "/")
    response = framework.redirect(back)
    if locale in i18n.LOCALES:
        framework.set_cookie(
            response, request, framework.LOCALE_COOKIE, locale, max_age=365 * 24 * 3600
        )
        if viewer.person is not None:
            with _db(request).transaction() as session:
                people.set_locale(session, person_id=viewer.person.id, locale=locale)
    return response


@router.get("/reset")
def reset_request_page(request: Request) -> Response:
    return framework.render(request, "auth/reset_request.html")


@router.post("/reset")
def reset_request(request: Request, form: Form) -> Response:
    email = form.get("email", "")
    if people.email_problem(people.normalise_email(email)) is not None:
        return framework.render(
            request,
            "auth/reset_request.html",
            {"values": {"email": email}, "errors": {"email": "Enter your email address."}},
            status=422,
        )
    with _db(request).transaction() as session:
        found = people.request_reset(session, email=email, ip=framework.client_ip(request))
    if found is not None:  # after commit: no network call inside a transaction
        person, token = found
        link = f"{_base_url(request)}/reset/{token}"
        settings = request.app.state.settings
        request.app.state.wiring.email.send(
            OutgoingEmail(
                to=person.email,
                subject="Reset your o2oloop password",
                text=(
                    f"Someone asked to reset the password of {person.email} on o2oloop.\n\n"
                    f"To choose a new password, open this link within an hour:\n{link}\n\n"
                    "If it was not you, ignore this message; your password stays as it is."
                ),
            )
        )
        if settings.env == "development" and not settings.smtp_host:
            log.warning("no SMTP host: the reset link for %s is %s", person.email, link)
    return framework.render(request, "auth/reset_sent.html", {"email": email})


def _base_url(request: Request) -> str:
    return request.app.state.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


@router.get("/reset/{token}")
def reset_form(request: Request, token: str) -> Response:
    with _db(request).reading() as session:
        valid = people.valid_reset(session, token=token) is not None
    return framework.render(
        request,
        "auth/reset_form.html",
        {"token": token, "valid": valid},
        status=200 if valid else 410,
    )


@router.post("/reset/{token}")
def reset_password(request: Request, token: str, form: Form) -> Response:
    password, again = form.get("password", ""), form.get("password_again", "")
    errors: dict[str, str] = {}
    if password != again:
        errors["password_again"] = "The two passwords differ."
    else:
        try:
            with _db(request).transaction() as session:
                people.reset_password(session, token=token, password=password)
        except InvalidInput as error:
            fields = error.extensions.get("fields") or {"__all__": error.detail}
            errors.update(fields)
    if errors:
        return framework.render(
            request,
            "auth/reset_form.html",
            {"token": token, "valid": True, "errors": errors},
            status=422,
        )
    return framework.redirect("/signin", done="password_reset")
