"""Stores (opening hours, capacity) with their terminals, and the merchant's people."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.auth.models import Role
from o2oloop.merchants import schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Store
from o2oloop.people import service as people
from o2oloop.web import framework
from o2oloop.web.console import common
from o2oloop.web.forms import FormInvalid, parse
from o2oloop.web.framework import CSRF, Form, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
INTERVALS = 2


@router.get("/console/stores")
def store_list(request: Request, viewer: MerchantPerson) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        stores = common.stores(session, viewer)
        terminals, _ = merchants.list_terminals(
            session,
            principal=viewer.principal,
            merchant_id=merchant.id,
            store_id=None,
            cursor=None,
            limit=200,
        )
    by_store: dict[str, list[Any]] = {}
    for terminal in terminals:
        by_store.setdefault(terminal.store_id, []).append(terminal)
    return framework.render(
        request,
        "console/stores.html",
        {"merchant": merchant, "stores": stores, "terminals": by_store, "weekdays": WEEKDAYS},
        timezone=merchant.timezone,
    )


def _hours_values(store: Store) -> dict[str, str]:
    values: dict[str, str] = {
        "name": store.name,
        "address": store.address,
        "capacity_per_hour": str(store.capacity_per_hour),
    }
    for day in WEEKDAYS:
        for i, interval in enumerate((store.opening_hours or {}).get(day, [])[:INTERVALS], 1):
            values[f"{day}_open_{i}"], values[f"{day}_close_{i}"] = (
                interval["open"],
                interval["close"],
            )
    return values


def _store_form(
    request: Request,
    viewer: framework.Viewer,
    store_id: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        store = merchants.get_store(
            session, principal=viewer.principal, merchant_id=merchant.id, store_id=store_id
        )
    return framework.render(
        request,
        "console/store_form.html",
        {
            "merchant": merchant,
            "store": store,
            "values": values if values is not None else _hours_values(store),
            "errors": errors or {},
            "weekdays": WEEKDAYS,
            "intervals": range(1, INTERVALS + 1),
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/stores/{store_id}")
def edit_store(request: Request, viewer: MerchantPerson, store_id: str) -> Response:
    return _store_form(request, viewer, store_id)


def _parse_store(form: dict[str, str]) -> schemas.StoreUpdate:
    hours: dict[str, list[dict[str, str]]] = {}
    errors: dict[str, str] = {}
    for day in WEEKDAYS:
        hours[day] = []
        for i in range(1, INTERVALS + 1):
            opens = form.get(f"{day}_open_{i}", "").strip()[:5]
            closes = form.get(f"{day}_close_{i}", "").strip()[:5]
            if opens and closes:
                hours[day].append({"open": opens, "close": closes})
            elif opens or closes:
                errors[f"{day}_{i}"] = "give both the opening and the closing time"
    values: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "address": form.get("address", "").strip(),
        "opening_hours": hours,
    }
    capacity = form.get("capacity_per_hour", "").strip()
    if capacity:
        if capacity.isdigit():
            values["capacity_per_hour"] = int(capacity)
        else:
            errors["capacity_per_hour"] = "enter a whole number"
    if errors:
        raise FormInvalid(errors)
    return parse(schemas.StoreUpdate, values, {"opening_hours": "hours"})


@router.post("/console/stores/{store_id}")
def save_store(request: Request, viewer: MerchantPerson, store_id: str, form: Form) -> Response:
    try:
        data = _parse_store(form)
        common.act(request, viewer, merchants.update_store, store_id=store_id, data=data)
    except FormInvalid as invalid:
        return _store_form(request, viewer, store_id, values=form, errors=invalid.errors)
    return framework.redirect("/console/stores", done="saved")


# ---- people ------------------------------------------------------------------------------


def _staff_page(
    request: Request,
    viewer: framework.Viewer,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    with common.reading(request) as session:
        merchant = common.merchant(session, viewer)
        found = people.list_people(session, principal=viewer.principal, merchant_id=merchant.id)
        history = people.sign_in_history(
            session, principal=viewer.principal, merchant_id=merchant.id, limit=30
        )
    return framework.render(
        request,
        "console/staff.html",
        {
            "merchant": merchant,
            "people": found,
            "history": history,
            "values": values or {"role": "merchant_staff"},
            "errors": errors or {},
        },
        status=422 if errors else 200,
        timezone=merchant.timezone,
    )


@router.get("/console/staff")
def staff(request: Request, viewer: MerchantPerson) -> Response:
    return _staff_page(request, viewer)


@router.post("/console/staff")
def add_person(request: Request, viewer: MerchantPerson, form: Form) -> Response:
    role = Role.MERCHANT_ADMIN if form.get("role") == "merchant_admin" else Role.MERCHANT_STAFF
    try:
        common.act(
            request,
            viewer,
            people.create_person,
            email=form.get("email", ""),
            password=form.get("password", ""),
            name=form.get("name", ""),
            role=role,
        )
    except FormInvalid as invalid:
        kept = {k: v for k, v in form.items() if k != "password"}
        return _staff_page(request, viewer, values=kept, errors=invalid.errors)
    return framework.redirect("/console/staff", done="created")


@router.post("/console/staff/{person_id}/active")
def switch_person(request: Request, viewer: MerchantPerson, person_id: str, form: Form) -> Response:
    try:
        common.act(
            request,
            viewer,
            people.set_active,
            person_id=person_id,
            active=form.get("active") == "1",
        )
    except FormInvalid as invalid:
        return _staff_page(request, viewer, errors=invalid.errors)
    return framework.redirect("/console/staff", done="saved")
