"""The dashboard: what a shop owner wants to know at a glance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.web import framework
from o2oloop.web.framework import CSRF, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)


@router.get("/console")
def dashboard(request: Request, viewer: MerchantPerson) -> Response:
    return framework.render(request, "console/dashboard.html", {})
