"""The tenancy matrix: another merchant's keys get 404 on every merchant-scoped endpoint.

Endpoints are read from the OpenAPI document, so an endpoint added later is covered (or
this test fails until it says how to call it).
"""

from __future__ import annotations

import re

import httpx
import pytest

from factories import (
    PLATFORM,
    Tenant,
    bearer,
    make_member,
    make_offer,
    make_tenant,
    platform_admin_key,
)
from money_kit import make_settlement
from o2oloop.campaigns import service as campaigns
from o2oloop.campaigns.schemas import CampaignCreate
from o2oloop.codes import service as codes
from o2oloop.db import Database
from webhooks_kit import make_webhook_delivery

# A valid body for each request schema, so a refusal can only come from tenancy.
VALID_BODIES: dict[str, dict[str, object]] = {
    "MerchantUpdate": {"name": "Taken over"},
    "StoreCreate": {"name": "Intruder", "latitude": 1.0, "longitude": 1.0},
    "StoreUpdate": {"name": "Intruder"},
    "StaffCreate": {"name": "Intruder"},
    "StaffUpdate": {"name": "Intruder"},
    "TerminalCreate": {"name": "Intruder"},
    "TerminalUpdate": {"name": "Intruder"},
    "OfferCreate": {
        "kind": "coupon",
        "title": "Intruder",
        "discount_kind": "amount_off",
        "amount_off": 100,
    },
    "OfferUpdate": {"title": "Intruder"},
    "MemberConsentUpdate": {"marketing_consent": True},
    "BatchCreate": {"count": 10},
    "StoredValueProgramUpdate": {"tiers": [{"pay": 100, "bonus": 100_000}]},
    "SettlementCreate": {"cutoff": "2026-01-01T00:00:00Z"},
    "WebhookEndpointCreate": {
        "url": "https://hooks.example.com/",
        "event_types": ["code.redeemed"],
    },
    "WebhookEndpointUpdate": {"enabled": False},
    "SecretRotation": {"overlap_hours": 1},
    "PublicationCreate": {"channel": "web"},
    "ReferralProgramIn": {"reward_kind": "stored_value", "reward_amount": 100},
    "ProposalsCreate": {"below": 0.5},
    "ProposalAccept": {"weeks": 1},
    "CampaignCreate": {"name": "Intruder", "offer_id": "ofr_intruder"},
    "CampaignUpdate": {"name": "Intruder"},
    "PreviewRequest": {},
    "Transition": {"action": "launch"},
}


def _path_values(db: Database, victim: Tenant) -> dict[str, str]:
    """Real ids of the victim's resources, one of each kind a path can name."""
    offer_id = make_offer(db, victim)
    with db.transaction() as session:
        batch = codes.issue_batch(
            session, principal=PLATFORM, merchant_id=victim.merchant_id, offer_id=offer_id, count=5
        )
    endpoint_id, delivery_id = make_webhook_delivery(db, victim)
    publication_id, proposal_id = _channel_rows(db, victim, offer_id)
    return {
        "endpoint_id": endpoint_id,
        "delivery_id": delivery_id,
        "publication_id": publication_id,
        "proposal_id": proposal_id,
        "campaign_id": _campaign(db, victim, offer_id),
        "merchant_id": victim.merchant_id,
        "store_id": victim.store_id,
        "staff_id": victim.staff_id,
        "terminal_id": victim.terminal_id,
        "offer_id": offer_id,
        "batch_id": batch.id,
        "member_id": make_member(db, victim),
        "settlement_id": make_settlement(db, victim.merchant_id),
    }


def _channel_rows(db: Database, victim: Tenant, offer_id: str) -> tuple[str, str]:
    """A publication of the victim's offer and an off-peak proposal for its store."""
    from o2oloop.channels import publications
    from o2oloop.channels.models import OffPeakProposal, ProposalState
    from o2oloop.channels.schemas import PublicationCreate
    from o2oloop.clock import now
    from o2oloop.db import new_id

    with db.transaction() as session:
        publication = publications.publish(
            session,
            principal=PLATFORM,
            merchant_id=victim.merchant_id,
            offer_id=offer_id,
            data=PublicationCreate(channel="sms"),
        )
        proposal = OffPeakProposal(
            id=new_id("opp"),
            merchant_id=victim.merchant_id,
            store_id=victim.store_id,
            weekday=1,
            start_hour=14,
            end_hour=16,
            per_slot_cap=5,
            amount_off=500,
            average_utilisation=0.1,
            state=ProposalState.PROPOSED,
            created_at=now(),
        )
        session.add(proposal)
        return publication.id, proposal.id


def _campaign(db: Database, victim: Tenant, offer_id: str) -> str:
    """A draft campaign of the victim's, sending its offer."""
    with db.transaction() as session:
        campaign = campaigns.create_campaign(
            session,
            principal=PLATFORM,
            merchant_id=victim.merchant_id,
            data=CampaignCreate(name="Win back", offer_id=offer_id),
        )
        return campaign.id


def _merchant_scoped_operations(spec: dict) -> list[tuple[str, str, str | None]]:
    operations = []
    for path, item in spec["paths"].items():
        if "{merchant_id}" not in path:
            continue
        for method, operation in item.items():
            body_ref = None
            body = operation.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                body_ref = schema["$ref"].rsplit("/", 1)[-1]
            operations.append((method.upper(), path, body_ref))
    return operations


def _fill(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"tenancy matrix does not know how to fill {missing} in {path}"
    return path.format(**{n: values[n] for n in names})


def test_other_merchants_keys_get_404_everywhere(db: Database, http: httpx.Client) -> None:
    victim = make_tenant(db)
    intruder = make_tenant(db)
    operations = _merchant_scoped_operations(http.get("/openapi.json").json())
    assert len(operations) >= 15
    values = _path_values(db, victim)
    checked = 0
    for method, template, body_ref in operations:
        url = _fill(template, values)
        if body_ref is not None:
            assert body_ref in VALID_BODIES, f"add a valid {body_ref} body to the tenancy matrix"
        body = VALID_BODIES.get(body_ref) if body_ref else None
        for role, headers in (
            ("admin", intruder.admin),
            ("staff", intruder.staff),
            ("terminal", intruder.terminal),
        ):
            response = http.request(method, url, json=body, headers=headers)
            assert response.status_code == 404, (method, url, role, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            checked += 1
    assert checked == 3 * len(operations)
    # And nothing was changed by all that.
    merchant = http.get(f"/v1/merchants/{victim.merchant_id}", headers=victim.admin).json()
    assert merchant["name"] != "Taken over"
    offers = http.get(f"/v1/merchants/{victim.merchant_id}/offers", headers=victim.admin).json()
    assert [o["title"] for o in offers["data"]] == ["10 off dinner"]
    stores = http.get(f"/v1/merchants/{victim.merchant_id}/stores", headers=victim.admin).json()
    assert [s["id"] for s in stores["data"]] == [victim.store_id]


def test_terminal_sees_only_its_own_store(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    second = http.post(
        f"/v1/merchants/{tenant.merchant_id}/stores",
        json={"name": "Second", "latitude": 1, "longitude": 1},
        headers=tenant.admin,
    ).json()
    own = http.get(
        f"/v1/merchants/{tenant.merchant_id}/stores/{tenant.store_id}", headers=tenant.terminal
    )
    assert own.status_code == 200
    other = http.get(
        f"/v1/merchants/{tenant.merchant_id}/stores/{second['id']}", headers=tenant.terminal
    )
    assert other.status_code == 404


@pytest.mark.parametrize("credential", ["none", "garbage", "revoked", "wrong-secret"])
def test_missing_or_bad_keys_get_401(db: Database, http: httpx.Client, credential: str) -> None:
    tenant = make_tenant(db)
    headers: dict[str, str] = {}
    if credential == "garbage":
        headers = bearer("not-a-key")
    elif credential == "wrong-secret":
        headers = bearer(tenant.admin_key[:-4] + "AAAA")
    elif credential == "revoked":
        revoked = http.post(f"/v1/keys/{tenant.admin_key_id}/revoke", headers=tenant.admin)
        assert revoked.status_code == 200
        headers = tenant.admin
    values = _path_values(db, tenant)
    spec = http.get("/openapi.json").json()
    for method, template, _ in _merchant_scoped_operations(spec):
        url = _fill(template, values)
        response = http.request(method, url, headers=headers)
        assert response.status_code == 401, (method, url, response.text)
        assert response.json()["status"] == 401


def test_405_names_every_method_of_the_path(http) -> None:
    response = http.delete("/v1/merchants")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def test_a_platform_admin_changing_no_merchant_gets_404_everywhere(
    db: Database, http: httpx.Client
) -> None:
    """A platform admin may act for any merchant, so only the merchant's existence stands
    between a body naming an unknown one and a half-written row (or a foreign-key 500).
    Reads of an unknown merchant are 404 too: an empty list would say it exists."""
    victim = make_tenant(db)
    admin = bearer(platform_admin_key(db))
    operations = _merchant_scoped_operations(http.get("/openapi.json").json())
    values = {**_path_values(db, victim), "merchant_id": "mer_nobody"}
    writes, reads = {}, {}
    for method, template, body_ref in operations:
        body = VALID_BODIES.get(body_ref) if body_ref else None
        response = http.request(method, _fill(template, values), json=body, headers=admin)
        reading = method == "GET" or template.endswith("/preview")
        problem = response.headers["content-type"].startswith("application/problem+json")
        status = response.status_code if problem else f"{response.status_code}, not a problem"
        (reads if reading else writes)[(method, template)] = status
    assert len(writes) >= 20 and len(reads) >= 20
    assert {op: status for op, status in writes.items() if status != 404} == {}
    assert {op: status for op, status in reads.items() if status != 404} == {}


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic abc", "Bearer o2o_key_bad"])
def test_every_operation_that_needs_a_key_is_401_without_one_whatever_its_body(
    http: httpx.Client, authorization: str | None
) -> None:
    """Even an operation that checks its key inside its own work (the counter's) answers a
    missing or malformed key with 401, not with what its empty body lacks (422)."""
    spec = http.get("/openapi.json").json()
    headers = {} if authorization is None else {"Authorization": authorization}
    answers = {}
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                url = re.sub(r"{\w+}", "x", template)
                answers[(method.upper(), template)] = http.request(
                    method, url, headers=headers
                ).status_code
    assert len(answers) >= 120
    assert {op: status for op, status in answers.items() if status != 401} == {}
