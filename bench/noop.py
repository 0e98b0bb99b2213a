"""The baseline of the speed-to-lead bench: a workflow with the shape of the lead
lifecycle's first pass (three activities one after the other, the same timeout and retry
policy) whose activities do nothing. It runs on the same Temporal server, in a worker built
like the real one (sandboxed workflows, sync activities on a thread pool), so the
difference between the two is what Leadflow itself costs.

It lives in its own module, not in the bench script, because the workflow sandbox
re-imports a workflow's module by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

# The same policy and timeout as workflows/lead_lifecycle.py.
RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
STEP_TIMEOUT = timedelta(seconds=30)


class NoopActivities:
    """Three no-op activities; the last one reports when it ran to ``on_done``, which is
    the point that matches "owner notified" in the lead lifecycle."""

    def __init__(self, on_done: Callable[[str, float], None]) -> None:
        self._on_done = on_done

    @activity.defn(name="bench_noop_assign")
    def assign(self, key: str) -> str:
        return key

    @activity.defn(name="bench_noop_sync")
    def sync(self, key: str) -> str:
        return key

    @activity.defn(name="bench_noop_notify")
    def notify(self, key: str) -> str:
        self._on_done(key, time.time())
        return key


@workflow.defn(name="BenchNoop")
class NoopWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        for step in (NoopActivities.assign, NoopActivities.sync, NoopActivities.notify):
            await workflow.execute_activity_method(
                step, key, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
            )
        return key
