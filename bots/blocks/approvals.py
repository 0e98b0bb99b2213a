"""Messages of an approval (``workflows.approval``): the request to a level's approvers,
with **Approve** and **Reject** buttons; the same message locked once the request is
decided, escalated past them or timed out (the outcome, who and when, no buttons); and
the notice to the person who asked.

Every builder returns ``(text, blocks)`` as ``bots.blocks.lifecycle`` does: ``text`` is
plain prose (the inbox shows it, Slack uses it for notifications), ``blocks`` is Block
Kit whose mrkdwn has every value that came from a form or a person escaped (``&`` first,
then ``<`` and ``>``), so a reason reading ``<!channel>`` pings nobody. The buttons'
``action_id`` are ``approval_approve`` and ``approval_reject``; their ``value`` is the
approval's id (its workflow's id), which is all the Slack app needs to send ``decide``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.approvals import ApprovalKind, ApprovalRequest, ApprovalResult, Outcome

Blocks = list[dict[str, Any]]

APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"
NAME_LIMIT = 200
PROSE_LIMIT = 1000
KIND_TITLES = {
    ApprovalKind.discount: "Discount",
    ApprovalKind.reassignment: "Reassignment",
    ApprovalKind.ownership_dispute: "Ownership dispute",
}


def approval_request(
    approval_id: str,
    request: ApprovalRequest,
    lead_name: str,
    company: str | None,
    requester_name: str,
    level: int,
    levels: int,
    deadline: datetime,
    *,
    escalated: bool = False,
    people: Mapping[str, str] | None = None,
    lead_url: str | None = None,
) -> tuple[str, Blocks]:
    """To an approver of ``level`` (of ``levels``): ``requester_name`` asks for
    ``request`` on the lead; decide by ``deadline``, or it goes to the next level.
    ``people`` names the reps the request mentions by email."""
    what = describe(request, _lead(lead_name, company), people)
    requester, reason = _cut(requester_name), _cut(request.reason, PROSE_LIMIT)
    onward = "escalates to the next level" if level < levels else "times out"
    passed = " (escalated: the level before did not decide in time)" if escalated else ""
    text = (
        f"Approval needed{passed}: {requester} asks you to approve {what}. Reason: {reason}. "
        f"Level {level} of {levels}; decide by {_plain_time(deadline)}, after that the "
        f"request {onward}."
    )
    blocks: Blocks = [
        _section(f"*Approval needed*: {_esc(requester)} asks you to approve *{_esc(what)}*."),
        _fields(
            ("Request", KIND_TITLES[request.kind]),
            ("Level", f"{level} of {levels}"),
            ("Requested by", requester),
            ("Decide by", _plain_time(deadline)),
        ),
        _section(f"*Reason*\n{_esc(reason)}"),
    ]
    if escalated:
        blocks.append(_context("Escalated to you: the level before did not decide in time."))
    blocks.append(
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                _button("Approve", APPROVE_ACTION, approval_id, "primary"),
                _button("Reject", REJECT_ACTION, approval_id, "danger"),
                *_open_lead(lead_url),
            ],
        }
    )
    return text, blocks


def approval_locked(
    request: ApprovalRequest,
    lead_name: str,
    company: str | None,
    requester_name: str,
    *,
    result: ApprovalResult | None = None,
    decider_name: str | None = None,
    escalated_to: int | None = None,
    people: Mapping[str, str] | None = None,
    lead_url: str | None = None,
) -> tuple[str, Blocks]:
    """The request message once nobody may act on it here: decided (``result``, by
    ``decider_name``), or escalated past this level to ``escalated_to``. No buttons."""
    what, requester = describe(request, _lead(lead_name, company), people), _cut(requester_name)
    status = (
        outcome_text(result, decider_name)
        if result is not None
        else (f"Escalated to level {escalated_to}: this level did not decide in time.")
    )
    text = f"{requester} asked to approve {what}. {status}"
    blocks: Blocks = [
        _section(f"{_esc(requester)} asked to approve *{_esc(what)}*."),
        _section(f"*{_esc(status)}*"),
        _context(f"Reason: {_esc(_cut(request.reason, PROSE_LIMIT))}"),
    ]
    url = _open_lead(lead_url)
    if url:
        blocks.append({"type": "actions", "elements": url})
    return text, blocks


def approval_notice(
    request: ApprovalRequest,
    lead_name: str,
    company: str | None,
    result: ApprovalResult,
    decider_name: str | None = None,
    *,
    people: Mapping[str, str] | None = None,
    lead_url: str | None = None,
) -> tuple[str, Blocks]:
    """To the person who asked: how their request ended."""
    what = describe(request, _lead(lead_name, company), people)
    status = outcome_text(result, decider_name)
    text = f"Your request for {what}: {status}"
    mark = {Outcome.approved: ":white_check_mark:", Outcome.withdrawn: ":heavy_minus_sign:"}.get(
        result.outcome, ":x:"
    )
    blocks: Blocks = [_section(f"{mark} Your request for *{_esc(what)}*: {_esc(status)}")]
    url = _open_lead(lead_url)
    if url:
        blocks.append({"type": "actions", "elements": url})
    return text, blocks


# ----------------------------------------------------------------------------- wording


def describe(request: ApprovalRequest, lead: str, people: Mapping[str, str] | None = None) -> str:
    """What the request asks for ``lead``, in a few words: "a 15% discount for Pat Doe
    (Acme)", "reassigning Pat Doe (Acme) to Sam Rivera", "giving Pat Doe (Acme) to
    Jordan Lee (ownership dispute)". ``people`` names the reps it mentions by email."""
    names = people or {}
    if request.kind is ApprovalKind.discount:
        return f"a {request.figures().get('percent', '?')}% discount for {lead}"
    if request.kind is ApprovalKind.reassignment:
        if request.to is None:
            return f"reassigning {lead} through the published rules"
        return f"reassigning {lead} to {_cut(names.get(request.to, request.to))}"
    claimant = request.claimant or "?"
    return f"giving {lead} to {_cut(names.get(claimant, claimant))} (ownership dispute)"


def outcome_text(result: ApprovalResult, decider_name: str | None = None) -> str:
    """How a request ended, in one sentence: "Approved by Dana Cole on 2026-12-01 10:00
    UTC.", "Rejected by …: too deep a cut.", "Timed out at level 3: rejected.",
    "Withdrawn on …: the lead is lost now."."""
    when = _plain_time(result.decided_at)
    if result.outcome is Outcome.withdrawn:
        why = f": {_cut(result.comment, PROSE_LIMIT)}" if result.comment else ""
        return f"Withdrawn on {when}{why}."
    if result.timed_out:
        return f"Timed out at level {result.level} on {when}: {result.outcome.value}."
    who = _cut(decider_name or result.decided_by)
    verb = "Approved" if result.outcome is Outcome.approved else "Rejected"
    comment = f": {_cut(result.comment, PROSE_LIMIT)}" if result.comment else ""
    return f"{verb} by {who} on {when} (level {result.level}){comment}."


# ----------------------------------------------------------------------------- helpers


def _cut(value: str, limit: int = NAME_LIMIT) -> str:
    """``value`` on one line, at most ``limit`` characters (Slack's limits)."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _esc(text: str) -> str:
    """``text`` escaped for Slack mrkdwn: ``&`` first, then ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lead(name: str, company: str | None) -> str:
    return f"{_cut(name)} ({_cut(company)})" if company else _cut(name)


def _plain_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A section of label/value fields; the values are escaped here."""
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v) or '—'}"} for k, v in pairs],
    }


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def _button(label: str, action_id: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
        "style": style,
    }


def _open_lead(lead_url: str | None) -> Blocks:
    if not lead_url:
        return []
    return [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open lead"},
            "url": lead_url,
            "action_id": "open_lead",
        }
    ]
