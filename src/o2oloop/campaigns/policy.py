"""The platform settings campaigns run under, as one value passed to their use cases."""

from __future__ import annotations

from dataclasses import dataclass

from o2oloop.campaigns import holdout
from o2oloop.codes.service import Keys
from o2oloop.config import Settings


@dataclass(frozen=True)
class Policy:
    secret_key: str
    global_control_bps: int = 0
    platform_cap_days: int = 1
    quiet_hours_start: int = 21
    quiet_hours_end: int = 9
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            secret_key=settings.secret_key,
            global_control_bps=settings.global_control_bps,
            platform_cap_days=settings.platform_cap_days,
            quiet_hours_start=settings.quiet_hours_start,
            quiet_hours_end=settings.quiet_hours_end,
            public_url=settings.public_url.rstrip("/"),
        )

    @property
    def holdout_key(self) -> bytes:
        return holdout.holdout_key(self.secret_key)

    @property
    def code_keys(self) -> Keys:
        return Keys.from_secret(self.secret_key)
