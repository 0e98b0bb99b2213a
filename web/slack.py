"""``POST /slack/events``: Slack's events, interactivity and the slash command, handed
to the Slack app (``bots/slack_app.py``), which verifies each request's signature first.
Without ``LEADFLOW_SLACK_BOT_TOKEN`` and ``LEADFLOW_SLACK_SIGNING_SECRET`` the endpoint
answers 404: the inbox of the admin app does Slack's job."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from bots.slack_app import build_slack_app
from settings import Settings
from store.db import Database

router = APIRouter(include_in_schema=False)


def slack_handler(
    settings: Settings, db: Database, temporal: Client
) -> AsyncSlackRequestHandler | None:
    """The Bolt request handler, or None when Slack is not configured."""
    token, secret = settings.slack_bot_token, settings.slack_signing_secret
    if token is None or secret is None:
        return None
    client = AsyncWebClient(token=token.get_secret_value(), base_url=settings.slack_api_url)
    app = build_slack_app(secret.get_secret_value(), client, db, temporal, settings.base_url)
    return AsyncSlackRequestHandler(app)


@router.post("/slack/events")
async def slack_events(request: Request) -> Response:
    handler: AsyncSlackRequestHandler | None = request.app.state.slack
    if handler is None:
        return JSONResponse(
            {
                "detail": "Slack is not configured (LEADFLOW_SLACK_BOT_TOKEN, "
                "LEADFLOW_SLACK_SIGNING_SECRET)"
            },
            status_code=404,
        )
    return await handler.handle(request)
