"""How far the demo city has got, in a small JSON file beside the database.

`o2oloop up` starts the server first and builds the city in a separate process (the city
runs on a frozen clock of its own, which must never be the server's); that process writes
its progress here and the server shows it at /demo-city.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from o2oloop import clock

_WALL = clock.Clock()  # progress is wall time, never the city's own frozen clock

State = Literal["starting", "logins_ready", "analysing", "ready", "failed"]
FILE_NAME = "demo-city.json"


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write(path: Path, *, state: State, **fields: Any) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    known = read(path) or {}
    known.update(fields, state=state, pid=os.getpid(), updated_at=_WALL.now().isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(known, indent=1, default=str))
    os.replace(scratch, path)


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def alive(progress: dict[str, Any]) -> bool:
    """Whether the process that writes this progress is still running."""
    try:
        os.kill(int(progress.get("pid", 0)), 0)
    except (OSError, ValueError):
        return False
    return int(progress.get("pid", 0)) > 0


def percent(progress: dict[str, Any]) -> int:
    """Overall completion: the visits are most of the work; analysis is the last tenth."""
    state = progress.get("state")
    if state == "ready":
        return 100
    if state == "analysing":
        return 90
    total = int(progress.get("total") or 0)
    return int(90 * int(progress.get("done") or 0) / total) if total else 0
