"""The cashier's page on a phone or tablet at the counter, and pairing the device.

The device holds its terminal key in an HttpOnly, SameSite=Strict cookie set by pairing;
every form carries the CSRF token and an idempotency key made when the form was rendered,
so a second press (or a retry on a slow connection) replays the first answer.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from o2oloop.auth.principal import Principal
from o2oloop.codes import codec, qr
from o2oloop.codes import service as codes
from o2oloop.errors import ProblemError
from o2oloop.money import Money
from o2oloop.terminal import desk
from o2oloop.terminal.page_kit import (
    NotPaired,
    db,
    device,
    once,
    page,
    parse_amount,
    plain_amount,
    settings,
)
from o2oloop.web import framework
from o2oloop.web.framework import CSRF, Form

router = APIRouter(tags=["pages"], include_in_schema=False)

MAX_PHOTO_BYTES = 8 * 1024 * 1024


def _counter(request: Request, principal: Principal) -> desk.Counter:
    with db(request).reading() as session:
        found = desk.counter(session, principal)
        session.expunge_all()
        return found


def _grace(request: Request) -> timedelta:
    return timedelta(minutes=settings(request).redemption_undo_minutes)


def _desk(
    request: Request,
    principal: Principal,
    counter: desk.Counter,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    with db(request).reading() as session:
        recent = desk.recent(session, principal=principal, grace=_grace(request))
        session.expunge_all()
    values: dict[str, Any] = {
        "recent": recent,
        "errors": {},
        "values": {},
        "notice": "",
        "problem": "",
        "refusal": None,
        "paid": None,
        "new_member": False,
        "spent": None,
        "left": None,
        **context,
    }
    return page(request, "desk.html", counter, values, status=status)


# ---- pairing -------------------------------------------------------------------------------


def _paired(request: Request) -> tuple[Principal, desk.Counter] | None:
    """The paired terminal and its counter; None when this device must pair (again) first."""
    try:
        principal = device(request)
        return principal, _counter(request, principal)
    except (NotPaired, ProblemError):
        return None


@router.get("/terminal", response_class=HTMLResponse)
def deskpage(request: Request) -> Response:
    paired = _paired(request)
    if paired is None:
        return RedirectResponse("/terminal/pair", status_code=303)
    principal, counter = paired
    done = request.query_params.get("done", "")
    return _desk(request, principal, counter, notice=done)


async def _photo_text(photo: UploadFile | None) -> tuple[str | None, str | None]:
    """(decoded text, error) from an uploaded photo of the QR, decoded by zxing-cpp."""
    if photo is None or not photo.filename:
        return None, None
    data = await photo.read(MAX_PHOTO_BYTES + 1)
    if not data:
        return None, None
    if len(data) > MAX_PHOTO_BYTES:
        return None, "The photo is too large; take it again."
    try:
        texts = await run_in_threadpool(qr.decode_image, data)
    except qr.UnreadableImage:
        return None, "That is not a photo we can read; take it again."
    if not texts:
        return None, "No QR code found in the photo: hold the phone closer, or type the code."
    return texts[0][:64], None


def _check(
    request: Request, principal: Principal, counter: desk.Counter, values: dict[str, str]
) -> HTMLResponse:
    currency = counter.merchant.currency
    try:
        bill = parse_amount(values.get("bill"), currency)
    except ValueError as bad:
        return _desk(request, principal, counter, values=values, errors={"bill": str(bad)},
                     status=422)  # fmt: skip
    code = values.get("code", "").strip()
    if not code:
        return _desk(request, principal, counter, values=values,
                     errors={"code": "Scan the QR code or type the code."}, status=422)  # fmt: skip
    config = settings(request)
    found = desk.check(
        db(request),
        principal=principal,
        code=code,
        bill=bill,
        keys=codes.Keys.from_secret(config.secret_key),
        rate_per_minute=config.terminal_attempts_per_minute,
    )
    if isinstance(found, desk.Refusal):
        return _desk(request, principal, counter, values=values, refusal=found, status=422)
    return page(request, "preview.html", counter, {"preview": found, "values": values})


@router.post("/terminal/check", dependencies=CSRF, response_class=HTMLResponse)
async def check(request: Request, photo: Annotated[UploadFile | None, File()] = None) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != framework.CSRF_FIELD}
    try:
        principal = await run_in_threadpool(device, request)
        counter = await run_in_threadpool(_counter, request, principal)
    except (NotPaired, ProblemError):
        return RedirectResponse("/terminal/pair", status_code=303)
    text, problem = await _photo_text(photo)
    if problem:
        return await run_in_threadpool(
            lambda: _desk(
                request, principal, counter, values=values, errors={"photo": problem}, status=422
            )
        )
    if text:
        values["code"] = text
    return await run_in_threadpool(_check, request, principal, counter, values)


@router.post("/terminal/accept", dependencies=CSRF, response_class=HTMLResponse)
def accept(request: Request, form: Form) -> Response:
    paired = _paired(request)
    if paired is None:
        return RedirectResponse("/terminal/pair", status_code=303)
    principal, counter = paired

    def make() -> Response:
        config = settings(request)
        bill = parse_amount(form.get("bill"), counter.merchant.currency)
        done = desk.accept(
            db(request),
            principal=principal,
            code=form.get("code", ""),
            bill=bill,
            keys=codes.Keys.from_secret(config.secret_key),
            rate_per_minute=config.terminal_attempts_per_minute,
        )
        if isinstance(done, desk.Refusal):
            return _desk(request, principal, counter, values=form, refusal=done, status=422)
        return page(
            request, "accepted.html", counter,
            {"accepted": done, "grace_minutes": settings(request).redemption_undo_minutes,
             "due_text": plain_amount(done.amount_due), "values": {}, "errors": {}},
        )  # fmt: skip

    return once(request, principal, form, make)


@router.post("/terminal/undo", dependencies=CSRF, response_class=HTMLResponse)
def undo(request: Request, form: Form) -> Response:
    paired = _paired(request)
    if paired is None:
        return RedirectResponse("/terminal/pair", status_code=303)
    principal, counter = paired

    def make() -> Response:
        try:
            with db(request).transaction() as session:
                codes.undo(
                    session, principal=principal,
                    redemption_id=form.get("redemption_id", ""), grace=_grace(request),
                )  # fmt: skip
        except ProblemError as refused:
            return _desk(request, principal, counter, problem=refused.detail, status=409)
        return _desk(request, principal, counter, notice="undone")

    return once(request, principal, form, make)


@router.post("/terminal/payment", dependencies=CSRF, response_class=HTMLResponse)
def payment(request: Request, form: Form) -> Response:
    paired = _paired(request)
    if paired is None:
        return RedirectResponse("/terminal/pair", status_code=303)
    principal, counter = paired

    def make() -> Response:
        errors: dict[str, str] = {}
        try:
            amount = parse_amount(form.get("amount"), counter.merchant.currency, required=True)
        except ValueError as bad:
            errors["amount"], amount = str(bad), None
        consent = {"yes": True, "no": False}.get(form.get("consent", ""))
        phone = form.get("phone", "").strip()
        if phone and form.get("consent") not in ("yes", "no"):
            errors["consent"] = "Read the question to the customer and tick their answer."
        if errors or amount is None:
            return _desk(request, principal, counter, values=form, errors=errors, status=422)
        try:
            with db(request).transaction() as session:
                outcome = desk.record_payment(
                    session, principal=principal, amount=amount, phone=phone or None,
                    consent=consent, redemption_id=form.get("redemption_id") or None,
                    secret_key=settings(request).secret_key,
                )  # fmt: skip
                paid = Money(outcome.visit.amount, outcome.visit.currency)
                new_member = outcome.new_member
        except ValidationError:
            return _desk(request, principal, counter, values=form,
                         errors={"phone": "Enter a phone number."}, status=422)  # fmt: skip
        except ProblemError as refused:
            field = str(refused.extensions.get("field") or "amount")
            return _desk(request, principal, counter, values=form,
                         errors={field if field in ("phone", "amount") else "amount":
                                 refused.detail}, status=422)  # fmt: skip
        return _desk(request, principal, counter, paid=paid, new_member=new_member)

    return once(request, principal, form, make)


@router.post("/terminal/spend", dependencies=CSRF, response_class=HTMLResponse)
def spend(request: Request, form: Form) -> Response:
    paired = _paired(request)
    if paired is None:
        return RedirectResponse("/terminal/pair", status_code=303)
    principal, counter = paired

    def make() -> Response:
        config = settings(request)
        values = {f"spend_{k}": v for k, v in form.items()}
        try:
            amount = parse_amount(form.get("amount"), counter.merchant.currency, required=True)
        except ValueError as bad:
            return _desk(request, principal, counter, values=values,
                         errors={"spend_amount": str(bad)}, status=422)  # fmt: skip
        assert amount is not None
        try:
            with db(request).transaction() as session:
                left = desk.spend(
                    session, principal=principal, phone=form.get("phone", ""), amount=amount,
                    region=config.default_phone_region, secret_key=config.secret_key,
                )  # fmt: skip
        except ProblemError as refused:
            field = "spend_phone" if refused.extensions.get("field") == "phone" else "spend_amount"
            return _desk(request, principal, counter, values=values,
                         errors={field: refused.detail}, status=422)  # fmt: skip
        return _desk(request, principal, counter, spent=Money(amount, left.currency), left=left)

    return once(request, principal, form, make)


@router.get("/terminal/check-character.js", include_in_schema=False)
def check_character_table() -> Response:
    """The public check-character rule for the page's instant typo hint, from the codec."""
    rule = {
        "alphabet": codec.ALPHABET,
        "length": codec.CODE_LENGTH,
        "base": codec.BASE,
        "prefix": codec.QR_PREFIX,
        "lookalikes": {chr(k): v for k, v in codec.LOOKALIKES.items()},
    }
    body = f"window.O2O_CODE = {json.dumps(rule)};\n"
    return Response(body, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})
