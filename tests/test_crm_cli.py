"""``leadflow crm check`` and ``leadflow reps sync`` against the fakes, and the polling
schedule the worker keeps."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, ScheduleIntervalSpec
from temporalio.service import RPCError, RPCStatusCode

from cli_crm import run_crm, run_reps
from store import crm_users
from tests.conftest import make_settings
from tests.crm_support import app_database
from tests.fakes.hubspot_api import running_hubspot
from tests.fakes.salesforce_api import running_salesforce
from workflows.schedules import CRM_POLL_SCHEDULE, ensure_crm_poll_schedule


def hubspot_settings(url: str, token: str, tmp_path: Path, **extra: object):
    return make_settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        crm_backend="hubspot",
        hubspot_base_url=url,
        hubspot_token=token,
        **extra,
    )


def test_crm_check_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app_database(tmp_path).dispose()
    with running_hubspot() as fake:
        settings = hubspot_settings(fake.url, fake.token, tmp_path)
        code = run_crm(argparse.Namespace(crm_command="check"), settings)
        out = capsys.readouterr().out
        assert code == 1
        assert "ok token" in out
        assert "LEADFLOW_HUBSPOT_CLIENT_SECRET is not set" in out
        assert "to fix:" in out
        settings = hubspot_settings(fake.url, "wrong-token", tmp_path)
        assert run_crm(argparse.Namespace(crm_command="check"), settings) == 1
        assert "!! token" in capsys.readouterr().out


def test_crm_check_is_clean_when_everything_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_database(tmp_path).dispose()
    with running_salesforce() as fake:
        fake.org.insert("Campaign", {"Name": "Leadflow nurture", "IsActive": True}, None)
        settings = make_settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'app.db'}",
            crm_backend="salesforce",
            salesforce_login_url=fake.url,
            salesforce_username="leadflow@example.com",
            salesforce_password="leadflow-password",
            salesforce_security_token="FakeSecurityToken42",
            salesforce_outbound_secret="s" * 32,
            salesforce_org_id=fake.org.org_id,
        )
        code = run_crm(argparse.Namespace(crm_command="check"), settings)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "everything is in order" in out


def test_reps_sync_links_by_email_and_reports_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = app_database(tmp_path)  # the three demo reps
    with running_hubspot() as fake:
        fake.add_user("avery.park@example.com", "Avery Park")
        fake.add_user("jordan.lee@example.com", "Jordan Lee", active=False)
        settings = hubspot_settings(fake.url, fake.token, tmp_path)
        code = run_reps(argparse.Namespace(reps_command="sync"), settings)
        out = capsys.readouterr().out
        assert code == 1
        assert "ok avery.park@example.com" in out
        assert (
            "!! jordan.lee@example.com: not linked, the CRM user with this email is inactive" in out
        )
        assert "!! sam.rivera@example.com: not linked, no CRM user has this email" in out
        with db.read() as session:
            linked = crm_users.owner_id_for(session, "hubspot", "AVERY.PARK@example.com", None)
            assert linked is not None
            assert (
                crm_users.owner_id_for(session, "hubspot", "jordan.lee@example.com", None) is None
            )
    db.dispose()


async def test_the_poll_schedule_is_created_updated_and_removed(
    client: Client, task_queue: str
) -> None:
    await ensure_crm_poll_schedule(client, task_queue, 60)
    handle = client.get_schedule_handle(CRM_POLL_SCHEDULE)
    try:
        await ensure_crm_poll_schedule(client, task_queue, 30)  # a restart with a new interval
        described = await handle.describe()
        intervals = described.schedule.spec.intervals
        assert [i.every for i in intervals] == [timedelta(seconds=30)]
        assert isinstance(intervals[0], ScheduleIntervalSpec)
    finally:
        await ensure_crm_poll_schedule(client, task_queue, 0)
    # Describe, not list: the schedule list comes from Temporal's visibility store, which
    # may still show a schedule for a moment after it was deleted.
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND
    await ensure_crm_poll_schedule(client, task_queue, None)  # removing twice is fine
