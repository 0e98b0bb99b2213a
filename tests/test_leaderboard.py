"""The weekly leaderboard: hand-computed figures, the post in the wins channel, the
schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bots.blocks.leaderboard import leaderboard_message
from domain.leaderboard import Activity, fastest_follow_up, leaderboard
from store.models import Notification
from tests.conftest import Stack
from tests.lifecycle_support import event, new_lead, publish
from workflows.leaderboard import LeaderboardWorkflow
from workflows.schedules import LEADERBOARD_SCHEDULE, ensure_leaderboard_schedule

T = datetime(2026, 11, 30, 9, tzinfo=UTC)


def act(rep: str, kind: str, **extra: object) -> Activity:
    return Activity(rep_email=f"{rep}@x.example", rep_name=rep.title(), kind=kind, at=T, **extra)


def test_points_reward_behaviours_and_results() -> None:
    rows = leaderboard(
        [
            act("ann", "contacted", follow_up_s=300),
            act("ann", "contacted", follow_up_s=900),
            act("ann", "meeting_booked"),
            act("bo", "contacted", follow_up_s=60),
            act("bo", "won", amount=Decimal("1000"), currency="eur"),
            act("bo", "won", amount=Decimal("500.50"), currency="EUR"),
            act("cy", "meeting_booked"),
            act("cy", "engagement"),  # not counted
        ]
    )
    got = [(r.rank, r.rep_name, r.points, r.deals_won, r.meetings_booked) for r in rows]
    assert got == [(1, "Bo", 21, 2, 0), (2, "Ann", 5, 0, 1), (3, "Cy", 3, 0, 1)]
    assert rows[0].revenue == {"EUR": Decimal("1500.50")}
    assert rows[1].median_follow_up_s == 600
    fastest = fastest_follow_up(rows)
    assert fastest is not None and fastest.rep_name == "Bo"
    text, blocks = leaderboard_message(rows, T.date(), (T + timedelta(days=6)).date())
    assert "Bo leads with 21 points" in text
    assert "€1,500.50" in str(blocks) and "Fastest follow-up: Bo" in str(blocks)


def test_ties_go_to_more_deals_then_faster_follow_up() -> None:
    rows = leaderboard(
        [act("ann", "contacted", follow_up_s=50), act("bo", "contacted", follow_up_s=10)]
    )
    assert [r.rep_name for r in rows] == ["Bo", "Ann"]
    assert leaderboard([]) == []


async def test_the_week_is_posted_to_the_wins_channel(stack: Stack) -> None:
    publish(stack)
    lead_id = await new_lead(stack)
    await event(stack, lead_id, "contacted")
    await event(stack, lead_id, "meeting_booked")
    run_id = f"leaderboard-{lead_id}"
    first = await stack.client.execute_workflow(
        LeaderboardWorkflow.run, id=run_id, task_queue=stack.task_queue
    )
    assert first.reps == 1
    with stack.db.read() as session:
        post = session.get(Notification, first.notification_id)
        assert post is not None and post.kind == "leaderboard" and post.recipient == "#wins"
        assert "4 points" in post.text


async def test_the_schedule_follows_the_settings(client: Client, task_queue: str) -> None:
    await ensure_leaderboard_schedule(client, task_queue, "0 9 * * 1", "Europe/Berlin")
    try:
        await ensure_leaderboard_schedule(client, task_queue, "0 8 * * 5", "UTC")
        described = await client.get_schedule_handle(LEADERBOARD_SCHEDULE).describe()
        spec = described.schedule.spec
        assert spec.time_zone_name == "UTC"
        assert spec.cron_expressions == ["0 8 * * 5"] or spec.calendars  # stored as calendars
    finally:
        await ensure_leaderboard_schedule(client, task_queue, "", "UTC")
    # Describe, not list: the list may still show a just-deleted schedule for a moment.
    with pytest.raises(RPCError) as gone:
        await client.get_schedule_handle(LEADERBOARD_SCHEDULE).describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
