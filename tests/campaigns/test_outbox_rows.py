"""A send's outbox rows are built from one serialised event and each event's own fields:
they must be exactly the rows the events themselves would write."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from o2oloop import events
from o2oloop.campaigns.events import CampaignMessageSent
from o2oloop.campaigns.send import outbox_rows_like
from o2oloop.codes.events import CodeClaimed

AT = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
ids = st.text("0123456789abcdefghjkmnpqrstvwxyz", min_size=1, max_size=26)
texts = st.text(max_size=80)  # names and bodies: quotes, backslashes, any script


def _message(event_id: str, member_id: str | None, body: str, subject: str):
    return CampaignMessageSent(
        event_id=f"evt_{event_id}",
        merchant_id="mer_1",
        campaign_id="cmp_1",
        message_id=f"msg_{event_id}",
        member_id=member_id,
        consumer_id=f"csm_{event_id}",
        offer_id="off_1",
        code_id=f"cod_{event_id}",
        code="ABCD-EFGH",
        code_expires_at=AT,
        subject=subject,
        body=body,
        occurred_at=AT,
    )


@given(st.lists(st.tuples(ids, st.none() | ids, texts, texts), min_size=1, max_size=6))
def test_rows_like_the_first_are_the_rows_each_event_writes(cases) -> None:
    built = [_message(e, m, b, s) for e, m, b, s in cases]
    varying = [
        {
            "event_id": e.event_id,
            "message_id": e.message_id,
            "member_id": e.member_id,
            "consumer_id": e.consumer_id,
            "code_id": e.code_id,
            "subject": e.subject,
            "body": e.body,
        }
        for e in built
    ]
    assert outbox_rows_like(built[0], varying) == [events.outbox_row(e) for e in built]


def test_claimed_rows_read_back_as_the_events() -> None:
    first = CodeClaimed(
        event_id="evt_1",
        merchant_id="mer_1",
        offer_id="off_1",
        code_id="cod_1",
        consumer_id="csm_1",
        occurred_at=AT,
    )
    rows = outbox_rows_like(
        first,
        [
            {"event_id": f"evt_{i}", "code_id": f"cod_{i}", "consumer_id": f"csm_{i}"}
            for i in (1, 2)
        ],
    )
    second = events.from_json("code.claimed", rows[1]["payload"])
    assert second == CodeClaimed(
        event_id="evt_2",
        merchant_id="mer_1",
        offer_id="off_1",
        code_id="cod_2",
        consumer_id="csm_2",
        occurred_at=AT,
    )
    assert [r["event_id"] for r in rows] == ["evt_1", "evt_2"]
    assert rows[0] == events.outbox_row(first)
