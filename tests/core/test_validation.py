"""A request body's schema says what its validators enforce: the same JSON is accepted by
both or refused by both (JSON's own types, and the rules between fields that the schema
states with if/then and oneOf)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from o2oloop.campaigns.models import TriggerKind
from o2oloop.campaigns.schemas import Audience, CampaignCreate, Trigger
from o2oloop.channels.schemas import ReferralProgramIn
from o2oloop.merchants.schemas import MerchantUpdate, StoreUpdate
from o2oloop.offers.models import DiscountKind, OfferKind
from o2oloop.offers.schemas import OfferCreate
from o2oloop.reviews.schemas import ReviewCreate
from o2oloop.validation import Instant
from o2oloop.webhooks.schemas import WebhookEndpointCreate

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=20_000),
    st.floats(min_value=-5, max_value=20_000, allow_nan=False),
    st.sampled_from(["", "7", "7.0", "true", "yes", "2026-06-01T12:00:00Z"]),
)


def _accepted(model: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@functools.cache
def _validator(model: type[BaseModel]) -> Any:
    return jsonschema_rs.validator_for(model.model_json_schema())


def _schema_valid(model: type[BaseModel], body: dict[str, Any]) -> bool:
    return bool(_validator(model).is_valid(body))


def _agree(model: type[BaseModel], body: dict[str, Any]) -> None:
    assert _accepted(model, body) == _schema_valid(model, body), body


@settings(max_examples=300, deadline=None)
@given(
    commission=SCALARS,
    active=SCALARS,
    holdout=SCALARS,
)
def test_numbers_and_booleans_are_read_as_their_schema_types(
    commission: Any, active: Any, holdout: Any
) -> None:
    _agree(MerchantUpdate, {"commission_bps": commission})
    _agree(StoreUpdate, {"capacity_overrides": [{"weekday": "mon", "hour": 3, "capacity": active}]})
    _agree(Audience, {"exclude_active_code": active, "days_since_last_min": holdout})


def test_a_whole_number_written_with_a_point_is_an_integer() -> None:
    assert MerchantUpdate.model_validate({"commission_bps": 250.0}).commission_bps == 250
    with pytest.raises(ValidationError):
        MerchantUpdate.model_validate({"commission_bps": True})


@pytest.mark.parametrize("text", ["0.5", "1700000000", "", "tomorrow", "2026-06-01T12:00:00"])
def test_an_instant_is_an_rfc_3339_date_time_with_its_offset(text: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(text)


def test_an_instant_reads_rfc_3339() -> None:
    moment = TypeAdapter(Instant).validate_python("2026-06-01T12:00:00+08:00")
    assert (moment.hour, moment.utcoffset().total_seconds()) == (12, 8 * 3600)  # type: ignore[union-attr]


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value, null, or the field left out (``...``)."""
    return st.one_of(st.just(...), st.none(), values)


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not ...}


@settings(max_examples=300, deadline=None)
@given(
    kind=_maybe(st.sampled_from([k.value for k in TriggerKind])),
    at=_maybe(st.just("21:30")),
    segment=_maybe(st.just("at_risk")),
    k=_maybe(st.just(1.5)),
    days=_maybe(st.just(3)),
)
def test_a_trigger_needs_what_its_schema_says_its_kind_needs(**fields: Any) -> None:
    _agree(Trigger, _body(**fields))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from([k.value for k in OfferKind]),
    discount_kind=_maybe(st.sampled_from([k.value for k in DiscountKind])),
    amount_off=_maybe(st.sampled_from([0, 500])),
    percent_off_bps=_maybe(st.just(1500)),
    price=_maybe(st.sampled_from([0, 8800])),
    face_value=_maybe(st.sampled_from([0, 12800])),
    topup_tiers=_maybe(st.sampled_from([[], [{"pay": 10000, "bonus": 1000}]])),
)
def test_an_offer_s_benefit_needs_what_its_schema_says_its_kind_needs(**fields: Any) -> None:
    _agree(OfferCreate, {"title": "Afternoon tea", **_body(**fields)})


@given(
    visit_id=_maybe(st.just("vis_1")),
    redemption_id=_maybe(st.just("red_1")),
)
def test_a_review_names_exactly_one_visit_or_redemption(**fields: Any) -> None:
    _agree(ReviewCreate, {"rating": 4, **_body(**fields)})


@given(event_type=st.sampled_from(["", "code.redeemed", "code.redeemed.v2", "visit.recorded"]))
def test_a_webhook_takes_the_event_types_its_schema_lists(event_type: str) -> None:
    _agree(WebhookEndpointCreate, {"url": "https://example.com/hook", "event_types": [event_type]})


@given(
    reward_kind=st.sampled_from(["coupon", "stored_value"]),
    reward_offer_id=_maybe(st.just("ofr_1")),
    reward_amount=_maybe(st.just(500)),
)
def test_a_referral_reward_names_what_its_kind_needs(**fields: Any) -> None:
    _agree(ReferralProgramIn, _body(**fields))


@given(
    measured=_maybe(st.booleans()),
    holdout_share=_maybe(st.sampled_from([0, 0.0, 0.00001, 0.1])),
)
def test_a_measured_campaign_keeps_a_holdout_above_zero(**fields: Any) -> None:
    _agree(CampaignCreate, {"name": "Win back", "offer_id": "ofr_1", **_body(**fields)})


def test_a_capacity_slot_given_twice_keeps_its_last_capacity() -> None:
    slots = [{"weekday": "mon", "hour": 9, "capacity": c} for c in (5, 7)]
    store = StoreUpdate.model_validate({"capacity_overrides": slots})
    assert [o.capacity for o in store.capacity_overrides or []] == [7]
