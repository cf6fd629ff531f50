"""The merchant console: dashboard, offers, members, money, stores and staff."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from o2oloop.web.console import dashboard, members, offers

    return [dashboard.router, offers.router, members.router]
