"""Posts to the fake Slack's ``response_url`` s, as Slack's interactivity docs describe
them: JSON with ``text`` and/or ``blocks``; ``replace_original`` replaces the message the
interaction came from, ``delete_original`` deletes it; otherwise the post is a new
message: ephemeral (seen by the person who acted) unless ``response_type`` is
``in_channel``. A URL takes up to 5 posts within 30 minutes. Called with the workspace's
lock held."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.slack_blocks import message_problems
from tests.fakes.slack_workspace import (
    RESPONSE_URL_TTL_S,
    RESPONSE_URL_USES,
    Ephemeral,
    Message,
    ResponsePost,
    ResponseUrl,
    Workspace,
)


def respond(ws: Workspace, url_id: str, body: dict[str, Any]) -> tuple[int, str | None]:
    """Record and apply a post of ``body`` to the response URL ``url_id``: the HTTP
    status, and the error (None when it was taken)."""
    record = ws.response_urls.get(url_id)
    if record is None:
        return 404, "no_service"
    if time.monotonic() - record.issued > RESPONSE_URL_TTL_S:
        return 404, "expired_url"
    if record.uses >= RESPONSE_URL_USES:
        return 404, "used_url"
    blocks = body.get("blocks")
    if blocks is not None and message_problems(blocks):
        return 400, "invalid_blocks"
    if not body.get("text") and not blocks and not _truthy(body.get("delete_original")):
        return 400, "no_text"
    record.uses += 1
    post = ResponsePost(
        url_id=url_id,
        response_type=body.get("response_type"),
        replace_original=_truthy(body.get("replace_original")),
        delete_original=_truthy(body.get("delete_original")),
        text=body.get("text"),
        blocks=blocks,
        body=body,
    )
    ws.response_posts.append(post)
    _apply(ws, post, record)
    return 200, None


def _apply(ws: Workspace, post: ResponsePost, record: ResponseUrl) -> None:
    """What a response does to the conversation it came from."""
    channel, ts = record.channel, record.message_ts
    original = ws.message(channel, ts) if channel and ts else None
    if post.delete_original:
        if original is not None:
            ws.messages[original.channel].remove(original)
        return
    if post.replace_original and original is not None:
        if post.text is not None:
            original.text = post.text
        original.blocks = post.blocks or []
        original.edits += 1
        return
    if channel is None:
        return
    thread_ts = post.body.get("thread_ts")
    if post.response_type == "in_channel":
        message = Message(
            channel=channel,
            ts=ws.new_ts(),
            text=post.text or "",
            blocks=post.blocks or [],
            user=ws.bot_user_id,
            thread_ts=thread_ts,
        )
        ws.messages.setdefault(channel, []).append(message)
    elif record.user is not None:
        ephemeral = Ephemeral(
            channel=channel,
            user=record.user,
            text=post.text or "",
            blocks=post.blocks or [],
            message_ts=ws.new_ts(),
            thread_ts=thread_ts,
        )
        ws.ephemerals.append(ephemeral)


def _truthy(value: Any) -> bool:
    return value in (True, "true", "1", 1)
