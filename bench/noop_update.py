"""A baseline of the event-latency bench: the smallest Temporal update there is. A workflow
that waits forever and answers its ``ping`` update at once, without an activity; what an
update costs on this server (client → server → worker's workflow task → server → client),
which every lead event pays before Leadflow's own work.

It lives in its own module, not in the bench script, because the workflow sandbox
re-imports a workflow's module by name.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BenchNoopUpdate")
class NoopUpdateWorkflow:
    def __init__(self) -> None:
        self._pings = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: False)
        return self._pings

    @workflow.update(name="ping")
    def ping(self, key: str) -> str:
        self._pings += 1
        return key
