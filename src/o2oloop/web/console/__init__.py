"""The merchant console: dashboard, offers, members, money, stores and staff."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.web.console import dashboard, members, money, offers, stores


def routers() -> list[APIRouter]:
    return [dashboard.router, offers.router, members.router, money.router, stores.router]
