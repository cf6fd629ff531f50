"""The periodic checkpoint: at least every `reviews_checkpoint_every_minutes`, so a verifier
always finds a recent signed tree head (the worker runs it; so does `o2oloop reviews
checkpoint`)."""

from __future__ import annotations

from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.reviews import log


def sign_checkpoint_if_due(db: Database, settings: Settings, *, force: bool = False):
    """The checkpoint signed now as (size, signed note), or None when none was due."""
    with db.transaction() as session:
        row = log.checkpoint(session, log=log.log_config(settings), force=force)
        return None if row is None else (row.size, row.note)
