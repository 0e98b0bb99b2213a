"""``leadflow slack --socket``: the Slack app over Socket Mode, for teams whose Leadflow
has no public URL for ``POST /slack/events``. Slack holds a WebSocket open to this
process (with the app-level token ``LEADFLOW_SLACK_APP_TOKEN``, ``xapp-…``) and sends
clicks, modals, the slash command and events through it; the handlers are the same as in
HTTP mode. Runs until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from settings import Settings

log = logging.getLogger("leadflow.slack")


def add_slack_parser(sub: Any) -> None:
    slack = sub.add_parser("slack", help="the Slack app over Socket Mode")
    slack.add_argument(
        "--socket", action="store_true", required=True, help="connect to Slack by Socket Mode"
    )


def run_slack(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    missing = [
        name
        for name, value in (
            ("LEADFLOW_SLACK_APP_TOKEN", settings.slack_app_token),
            ("LEADFLOW_SLACK_BOT_TOKEN", settings.slack_bot_token),
            ("LEADFLOW_SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if value is None
    ]
    if missing:
        raise SystemExit(f"leadflow slack --socket needs {', '.join(missing)}")
    asyncio.run(serve_socket_mode(settings))
    return 0


async def serve_socket_mode(settings: Settings, stop: asyncio.Event | None = None) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.web.async_client import AsyncWebClient

    from bots.slack_app import build_slack_app
    from store.db import Database
    from workflows.client import make_client

    assert settings.slack_app_token and settings.slack_bot_token and settings.slack_signing_secret
    db = Database(settings.effective_database_url)
    temporal = await make_client(settings)
    bot = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    app = build_slack_app(
        settings.slack_signing_secret.get_secret_value(), bot, db, temporal, settings.base_url
    )
    handler = AsyncSocketModeHandler(
        app,
        settings.slack_app_token.get_secret_value(),
        web_client=AsyncWebClient(base_url=settings.slack_api_url),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError):  # not the main thread (tests)
            break
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("connected to Slack by Socket Mode")
    try:
        await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        db.dispose()
