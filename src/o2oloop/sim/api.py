"""How far the demo city has got, while `o2oloop up` fills it in behind the server."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from o2oloop.sim import progress

router = APIRouter(tags=["ops"])


def _progress(request: Request) -> dict[str, Any]:
    found = progress.read(progress.path_in(request.app.state.settings.data_dir))
    if found is None:
        return {"state": "none", "percent": 0}
    return {**found, "percent": progress.percent(found), "running": progress.alive(found)}


@router.get("/demo-city.json")
def demo_city_json(request: Request) -> dict[str, Any]:
    """The demo city's progress: state, visits done of total, percent, seconds so far."""
    return _progress(request)


@router.get("/demo-city", response_class=HTMLResponse)
def demo_city(request: Request) -> HTMLResponse:
    """A page that refreshes itself until the demo city is complete."""
    found = _progress(request)
    state, percent = found["state"], found["percent"]
    building = state not in ("ready", "none", "failed") and found.get("running", False)
    words = {
        "none": "No demo city is being built on this database.",
        "ready": found.get("summary", "The demo city is ready."),
        "failed": "Building the demo city failed; see the server's terminal.",
        "analysing": "Every visit is in; learning every member (segments, CLV, next visit).",
    }.get(state, f"Simulating {found.get('done', 0):,} of {found.get('total', 0):,} visits.")
    if state not in ("ready", "none", "failed") and not building:
        words = "The demo city stopped before it was complete."
    refresh = '<meta http-equiv="refresh" content="3">' if building else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo city {percent}%</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Demo city</h1>
<progress max="100" value="{percent}" style="width: 100%; height: 1.5rem">{percent}%</progress>
<p><strong>{percent}%</strong> — {escape(str(words))}</p>
<p>The console and the terminal work already; their pages fill in as the months of visits
are simulated. <a href="/">Open o2oloop</a></p>
</body></html>"""
    return HTMLResponse(body)
