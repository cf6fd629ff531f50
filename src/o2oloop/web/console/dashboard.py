"""The dashboard: what a shop owner wants to know at a glance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from o2oloop.analytics import service as analytics
from o2oloop.dashboard import board as numbers
from o2oloop.web import framework, i18n
from o2oloop.web.console import charts, common
from o2oloop.web.framework import CSRF, MerchantPerson

router = APIRouter(include_in_schema=False, dependencies=CSRF)


def _visit_chart(
    board: numbers.Dashboard, fmt: i18n.Formats, *, width: int = 720, height: int = 220
) -> charts.BarChart:
    days = board.days
    return charts.bar_chart(
        [d.visits for d in days],
        [fmt.short_date(d.day) for d in days],
        [
            f"{fmt.date(d.day)}: {d.visits} · {fmt.money(d.revenue, board.merchant.currency)}"
            for d in days
        ],
        every=7,
        highlight=[d.day.weekday() < 5 for d in days],
        width=width,
        height=height,
    )


def _member_chart(board: numbers.Dashboard, fmt: i18n.Formats, gettext: Any) -> Any:
    weeks = board.member_weeks
    return charts.stacked_chart(
        [[w.returning for w in weeks], [w.new for w in weeks]],
        ["bar", "bar new"],
        [fmt.short_date(w.starts) for w in weeks],
        [
            [gettext("%(n)s returning", n=w.returning) for w in weeks],
            [gettext("%(n)s new", n=w.new) for w in weeks],
        ],
        width=400,
        height=220,
    )


def _heatmaps(session: Any, viewer: framework.Viewer, stores: list[Any]) -> list[dict[str, Any]]:
    maps = []
    for store in stores[:6]:
        slots = numbers.store_load(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id, store=store
        )
        open_hours = sorted({s.hour for s in slots if s.open})
        hours = list(range(open_hours[0], open_hours[-1] + 1)) if open_hours else list(range(8, 23))
        maps.append(
            {
                "store": store,
                "hours": hours,
                "weekdays": list(dict.fromkeys(s.weekday for s in slots)),
                "grid": {(s.weekday, s.hour): s for s in slots},
                "quiet": sum(1 for s in slots if s.off_peak),
            }
        )
    return maps


@router.get("/console")
def dashboard(request: Request, viewer: MerchantPerson) -> Response:
    with common.reading(request) as session:
        board = numbers.dashboard(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id
        )
        as_of, sizes, _model = analytics.segment_sizes(
            session, principal=viewer.principal, merchant_id=viewer.merchant_id
        )
        heatmaps = _heatmaps(session, viewer, common.stores(session, viewer))
    fmt = i18n.Formats(viewer.locale, board.merchant.timezone)
    gettext = framework.translators(viewer.locale)[0]
    total_members = sum(n for _, n, _, _ in sizes)
    return framework.render(
        request,
        "console/dashboard.html",
        {
            "board": board,
            "merchant": board.merchant,
            "visit_chart": _visit_chart(board, fmt),
            "visit_chart_small": _visit_chart(board, fmt, width=360, height=200),
            "member_chart": _member_chart(board, fmt, gettext),
            "segments": sizes,
            "segments_as_of": as_of,
            "total_members": total_members,
            "clv_top": max((b.members for b in board.clv), default=0),
            "heatmaps": heatmaps,
            "heat_colour": charts.heat_colour,
        },
        timezone=board.merchant.timezone,
    )
