"""``Leaderboard``: run by the ``weekly-leaderboard`` schedule; posts the week that ends
at the run's start to the wins channel (once per week, whatever a retry does)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.leaderboard import (
        LeaderboardActivities,
        LeaderboardInput,
        LeaderboardPosted,
    )

from workflows.steps import RETRY


@workflow.defn(name="Leaderboard")
class LeaderboardWorkflow:
    @workflow.run
    async def run(self) -> LeaderboardPosted:
        end = workflow.now()
        return await workflow.execute_activity_method(
            LeaderboardActivities.post,
            LeaderboardInput(end=end),
            start_to_close_timeout=timedelta(minutes=2),
            schedule_to_close_timeout=timedelta(hours=6),
            retry_policy=RETRY,
        )
