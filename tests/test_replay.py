"""Determinism guard: recorded lifecycle histories must replay on the current workflow code.

Histories under ``tests/histories/`` were recorded from real runs; a change to the order of
workflow commands that is not behind ``workflow.patched`` makes this test fail. To record
a fresh history (after a deliberate, patched change), run
``LEADFLOW_RECORD_HISTORY=1 .venv/bin/pytest tests/test_replay.py``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.conftest import Stack, unique_email
from worker import SANDBOX
from workflows.approval import ApprovalWorkflow
from workflows.crm_inbound import CrmNoticeWorkflow, CrmPollWorkflow
from workflows.handoff import HandoffWorkflow
from workflows.lead_lifecycle import LeadLifecycleWorkflow

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    return Replayer(
        workflows=[
            LeadLifecycleWorkflow,
            HandoffWorkflow,
            CrmNoticeWorkflow,
            CrmPollWorkflow,
            ApprovalWorkflow,
        ],
        data_converter=pydantic_data_converter,
        workflow_runner=SANDBOX,
    )


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    await replayer().replay_workflow(load(path))


def test_histories_exist() -> None:
    assert sorted(HISTORIES.glob("*.json")), "no recorded history to guard determinism"


async def test_fresh_run_with_resubmission_replays(stack: Stack) -> None:
    email = unique_email()
    lead_id = (await stack.submit(email=email)).json()["lead_id"]
    await stack.wait_for(lead_id)
    await stack.submit(email=email, title="CTO")
    handle = stack.client.get_workflow_handle(f"lead-{lead_id}")
    for _ in range(100):
        state = await handle.query("state")
        if state and state.get("submissions") == 2:
            break
        await asyncio.sleep(0.05)
    history = await handle.fetch_history()
    await replayer().replay_workflow(history)
    if os.environ.get("LEADFLOW_RECORD_HISTORY") == "1" and "sqlite" in stack.db.url:
        (HISTORIES / "lead_lifecycle_routed_and_resubmitted.json").write_text(history.to_json())
