"""The lifecycle's message builders: plain text plus Block Kit that Slack accepts (known
block types, texts within Slack's limits) and in which nothing from a form can mention or
link anyone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bots.blocks import lifecycle as lb

DEADLINE = datetime(2026, 12, 8, 10, 15, tzinfo=UTC)
HOSTILE = "<!channel> & <https://evil.example|click> " + "x" * 5000


def every_message(name: str = "Jane Doe", company: str = "Acme") -> dict[str, Any]:
    url = "http://127.0.0.1:8000/admin/leads/abc"
    return {
        "sla_reminder": lb.sla_reminder(
            name, company, "Avery Park", timedelta(minutes=10), DEADLINE, url, "U123"
        ),
        "sla_escalation": lb.sla_escalation(
            name, company, "Avery Park", "Morgan Diaz", timedelta(minutes=45), 2, url
        ),
        "stale_reminder": lb.stale_reminder(
            name, company, "Avery Park", "meeting_booked", timedelta(days=14), url
        ),
        "reassigned": lb.reassigned(
            name,
            company,
            "Sam Lee",
            "Avery Park",
            "no first contact within 15 min",
            True,
            DEADLINE,
            url,
        ),
        "reassigned_manually": lb.reassigned(
            name, company, "Sam Lee", None, "Avery is on leave", False
        ),
        "win_announcement": lb.win_announcement(
            "Avery Park", company, Decimal("48000"), "USD", 37, "Morgan Diaz"
        ),
        "handoff": lb.handoff_to_account_manager(
            "Morgan Diaz",
            company,
            "Avery Park",
            name,
            "jane@acme.example",
            Decimal("1250.5"),
            "chf",
            date(2026, 12, 8),
            "Wants SSO first",
            url,
        ),
    }


def texts(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every text object of a block."""
    if "text" in block:
        yield block["text"]
    yield from block.get("fields", [])
    for element in block.get("elements", []):
        yield element["text"] if element["type"] == "button" else element


@pytest.mark.parametrize("hostile", [False, True])
def test_every_message_is_valid_block_kit(hostile: bool) -> None:
    messages = every_message(HOSTILE, HOSTILE) if hostile else every_message()
    for kind, (text, blocks) in messages.items():
        assert text and len(text) <= 4000, kind
        assert 1 <= len(blocks) <= 50, kind
        for block in blocks:
            assert block["type"] in {"section", "context", "actions"}, kind
            assert len(block.get("fields", [])) <= 10, kind
            for obj in texts(block):
                assert obj["type"] in {"mrkdwn", "plain_text"}, kind
                assert 0 < len(obj["text"]) <= 3000, kind
                if hostile:
                    assert "<!channel>" not in obj["text"], kind
                    assert "<https://evil" not in obj["text"], kind


def test_the_texts_say_what_happened_in_plain_words() -> None:
    m = {kind: text for kind, (text, _) in every_message().items()}
    assert m["sla_reminder"] == (
        "Reminder for Avery Park: Jane Doe (Acme) has waited 10 min for a first contact. "
        "Please reach out by 2026-12-08 10:15 UTC; after that the lead may go to another rep."
    )
    assert m["sla_escalation"] == (
        "Escalation for Morgan Diaz: Jane Doe (Acme) has had no first contact in 45 min. "
        "It was reassigned twice and is now with Avery Park. Please step in."
    )
    assert m["stale_reminder"] == (
        "Avery Park, Jane Doe (Acme) has been at meeting booked for 14 days with no "
        "activity. Log what happened or move the lead on."
    )
    assert m["reassigned"] == (
        "Sam Lee, Jane Doe (Acme) is yours now: Avery Park did not follow up in time (no "
        "first contact within 15 min). Please reach out by 2026-12-08 10:15 UTC."
    )
    assert m["reassigned_manually"] == (
        "Sam Lee, Jane Doe (Acme) is yours now: it was reassigned from its previous owner: "
        "Avery is on leave."
    )
    assert m["win_announcement"] == (
        "Avery Park won Acme: $48,000, closed in 37 days. Acme now goes to Morgan Diaz in "
        "account management."
    )
    assert m["handoff"] == (
        "Morgan Diaz, Acme is your new customer: Avery Park closed a 1,250.50 CHF deal on "
        "2026-12-08. Main contact: Jane Doe <jane@acme.example>. Please start the onboarding."
    )


def test_blocks_mention_by_slack_id_and_show_times_in_the_readers_zone() -> None:
    _, blocks = every_message()["sla_reminder"]
    first = blocks[0]["text"]["text"]
    assert first.startswith("<@U123>, *Jane Doe (Acme)*")
    stamp = int(DEADLINE.timestamp())
    assert f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|2026-12-08 10:15 UTC>" in first
    assert blocks[-1]["elements"][0]["url"] == "http://127.0.0.1:8000/admin/leads/abc"


@pytest.mark.parametrize(
    ("elapsed", "said"),
    [
        (timedelta(seconds=20), "under a minute"),
        (timedelta(minutes=59), "59 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=30), "1 day 6 h"),
        (timedelta(days=3, hours=5), "3 days"),
    ],
)
def test_durations_read_as_a_person_says_them(elapsed: timedelta, said: str) -> None:
    text, _ = lb.sla_reminder("Jane", None, "Avery", elapsed, DEADLINE)
    assert f"Jane has waited {said} for" in text
