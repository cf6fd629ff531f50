"""The merchant console: dashboard, offers, members, money, campaigns, reviews, stores,
staff and webhooks."""

from __future__ import annotations

from fastapi import APIRouter

from o2oloop.web.console import (
    campaigns,
    dashboard,
    members,
    money,
    offers,
    reviews,
    stores,
    webhooks,
)


def routers() -> list[APIRouter]:
    return [
        dashboard.router,
        offers.router,
        members.router,
        money.router,
        campaigns.router,
        reviews.router,
        stores.router,
        webhooks.router,
    ]
