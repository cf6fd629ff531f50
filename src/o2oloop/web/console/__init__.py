"""The merchant console: dashboard, offers, members, money, stores and staff."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from o2oloop.web.console import dashboard, members, money, offers, stores

    return [dashboard.router, offers.router, members.router, money.router, stores.router]
