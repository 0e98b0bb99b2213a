"""Approvals from Slack: **Approve** / **Reject** (a modal asks for the comment) on a
request's message, **Request reassignment** on a lead's card (a modal asks why), and
``/leadflow discount <lead> <percent> <reason>``.

Decisions go to the approval's workflow as the ``decide`` update, requests to the lead's
workflow as ``request_approval``: the same updates the API and the admin app send, so the
workflows alone say who may decide (only an approver of the current level: anyone else
is told "you are not an approver for this request") and the first valid decision wins.
The request's messages are then locked by the approval workflow itself."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from bots.blocks.lead_card import REQUEST_REASSIGNMENT
from bots.blocks.text import esc
from bots.lead_requests import Asked, request_approval
from bots.slack_people import Actor
from domain.approvals import ApprovalDecisionIn, ApprovalKind, ApprovalResult

log = logging.getLogger("leadflow.slack")

APPROVE, REJECT = "approval_approve", "approval_reject"
REJECT_VIEW, REASSIGN_VIEW = "approval_reject", "request_reassignment"
COMMENT_BLOCK, COMMENT_INPUT = "comment", "comment_input"
UPDATE_TIMEOUT = timedelta(seconds=20)


class SlackApprovals:
    """``actor`` and ``respond_to`` come from the lead handlers (``bots.slack_app``)."""

    def __init__(self, temporal: Client, actor: Any, responder: Any) -> None:
        self._temporal = temporal
        self._actor = actor
        self._responder = responder

    def register(self, app: AsyncApp) -> None:
        app.action(APPROVE)(self.on_approve)
        app.action(REJECT)(self.on_reject)
        app.view(REJECT_VIEW)(self.on_reject_submitted)
        app.action(REQUEST_REASSIGNMENT)(self.on_request_reassignment)
        app.view(REASSIGN_VIEW)(self.on_reassignment_submitted)

    # -- deciding ---------------------------------------------------------------------

    async def on_approve(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any
    ) -> None:
        await ack()
        approval_id = str(body["actions"][0].get("value") or "")
        actor = await self._actor(client, body["user"]["id"])
        await respond(**self._ephemeral(await self._decide(approval_id, actor, "approve", None)))

    async def on_reject(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        approval_id = str(body["actions"][0].get("value") or "")
        metadata = json.dumps(
            {"approval_id": approval_id, "response_url": body.get("response_url")}
        )
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=_text_modal(REJECT_VIEW, "Reject", "Why do you reject it?", "Reject", metadata),
        )

    async def on_reject_submitted(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        comment = _text_of(view)
        if not comment:
            await ack(
                response_action="errors", errors={COMMENT_BLOCK: "A rejection needs a reason"}
            )
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        actor = await self._actor(client, body["user"]["id"])
        answer = await self._decide(str(meta.get("approval_id") or ""), actor, "reject", comment)
        await self._responder(client, meta.get("response_url"))(**self._ephemeral(answer))

    async def _decide(
        self, approval_id: str, actor: Actor, decision: str, comment: str | None
    ) -> str:
        if actor.email is None:
            return "Leadflow could not read your email from Slack, so it cannot tell who you are."
        try:
            decided = ApprovalDecisionIn.model_validate(
                {"decision": decision, "by": actor.email, "comment": comment}
            )
        except ValidationError:
            return "That decision could not be read."
        handle = self._temporal.get_workflow_handle(approval_id)
        try:
            result: ApprovalResult = await handle.execute_update(
                "decide", decided, result_type=ApprovalResult, rpc_timeout=UPDATE_TIMEOUT
            )
        except WorkflowUpdateFailedError as err:
            return _refused(err)
        except RPCError as err:
            log.warning("could not send a decision to %s: %s", approval_id, err.status)
            return "This request is closed, or Leadflow cannot be reached: nothing was changed."
        return f"Done: the request is *{esc(result.outcome.value)}*."

    # -- requesting -------------------------------------------------------------------

    async def on_request_reassignment(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        lead_id = str(body["actions"][0].get("value") or "")
        metadata = json.dumps({"lead_id": lead_id, "response_url": body.get("response_url")})
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=_text_modal(
                REASSIGN_VIEW,
                "Reassignment",
                "Why should someone else take this lead?",
                "Ask for approval",
                metadata,
            ),
        )

    async def on_reassignment_submitted(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        reason = _text_of(view)
        if not reason:
            await ack(response_action="errors", errors={COMMENT_BLOCK: "Say why"})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        actor = await self._actor(client, body["user"]["id"])
        text = await self.request(
            str(meta.get("lead_id") or ""),
            actor,
            {"kind": ApprovalKind.reassignment.value, "reason": reason},
        )
        await self._responder(client, meta.get("response_url"))(**self._ephemeral(text))

    async def discount_command(self, actor: Actor, words: list[str]) -> str:
        """``/leadflow discount <lead id> <percent> <reason…>``."""
        if len(words) < 3:
            return "Say `/leadflow discount <lead id> <percent> <reason>`."
        lead_id, percent, reason = words[0], words[1].rstrip("%"), " ".join(words[2:])
        try:
            Decimal(percent)
        except InvalidOperation:
            return f"`{esc(percent)}` is not a percent like 15 or 12.5."
        return await self.request(
            lead_id,
            actor,
            {"kind": ApprovalKind.discount.value, "percent": percent, "reason": reason},
        )

    async def request(self, lead_id: str, actor: Actor, fields: dict[str, Any]) -> str:
        if actor.email is None:
            return "Leadflow could not read your email from Slack, so it cannot tell who you are."
        outcome = await request_approval(self._temporal, lead_id, actor.email, fields)
        if outcome.asked is Asked.invalid:
            return f"That request could not be read: {esc(outcome.problems or '')}"
        if outcome.refusal is not None:
            return _refused(outcome.refusal)
        started = outcome.started
        if started is None:
            return f"Leadflow has no open lead `{esc(lead_id)}`."
        who = ", ".join(esc(a) for a in started.approvers) or "the approvers"
        return (
            f"Your request went to {who} for approval (level {started.level} of {started.levels})."
        )

    @staticmethod
    def _ephemeral(text: str) -> dict[str, Any]:
        return {"text": text, "response_type": "ephemeral", "replace_original": False}


def _refused(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == "NotApprover":
            return "You are not an approver for this request: nothing was changed."
        return f"{esc(cause.message)}: nothing was changed."
    return "Leadflow refused this: nothing was changed."


def _text_of(view: dict[str, Any]) -> str:
    values = view.get("state", {}).get("values", {})
    return str(values.get(COMMENT_BLOCK, {}).get(COMMENT_INPUT, {}).get("value") or "").strip()


def _text_modal(
    callback: str, title: str, label: str, submit: str, metadata: str
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": COMMENT_BLOCK,
                "label": {"type": "plain_text", "text": label},
                "element": {
                    "type": "plain_text_input",
                    "action_id": COMMENT_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }
