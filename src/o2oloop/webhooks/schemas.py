"""Request and response shapes for webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from o2oloop.validation import JsonBody, Text
from o2oloop.webhooks.catalog import EVENT_TYPES
from o2oloop.webhooks.models import DeliveryState


def _known_types(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event type {unknown[0]!r}; known types: {', '.join(sorted(EVENT_TYPES))}"
        )
    return sorted(set(values))


def _printable(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("may not contain control characters")
    return value


Description = Annotated[Text, Field(pattern=r"^[^\x00-\x1f\x7f]*$"), AfterValidator(_printable)]
# The schema lists the catalog, so an event type the schema allows is one a merchant can take.
EventType = Annotated[str, Field(json_schema_extra={"enum": sorted(EVENT_TYPES)})]
EventTypes = Annotated[
    list[EventType], Field(min_length=1, max_length=50), AfterValidator(_known_types)
]
Url = Annotated[
    str,
    Field(min_length=1, max_length=2048, pattern=r"^https?://\S+$"),
]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WebhookEndpointCreate(JsonBody):
    url: Url
    description: Description = ""
    event_types: EventTypes
    enabled: bool = True


class WebhookEndpointUpdate(JsonBody):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    # Enabling again (after a disable for failures) starts its failure count afresh.
    enabled: bool | None = None


class WebhookEndpointRead(ORM):
    id: str
    merchant_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class SecretRotation(JsonBody):
    # How long the old secret keeps signing beside the new one (0 = stop at once).
    overlap_hours: float = Field(default=24, ge=0, le=24 * 7)


class WebhookEndpointCreated(BaseModel):
    """The endpoint and its signing secret, shown this once."""

    endpoint: WebhookEndpointRead
    secret: str


class SecretRotated(BaseModel):
    """The new signing secret, shown this once; the old one signs too until the time given."""

    endpoint: WebhookEndpointRead
    secret: str
    previous_secret_expires_at: datetime | None


class WebhookDeliveryRead(ORM):
    id: str = Field(description="the webhook-id header: the same on every retry and replay")
    endpoint_id: str
    event_id: str
    event_type: str
    sequence: int
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    delivered_at: datetime | None
    created_at: datetime
    payload: str


class WebhookAttemptRead(ORM):
    id: str
    delivery_id: str
    endpoint_id: str
    attempted_at: datetime
    url: str
    succeeded: bool
    status: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


class EventTypeRead(BaseModel):
    type: str
    description: str
