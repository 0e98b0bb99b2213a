"""Messages about leads."""

from __future__ import annotations

from typing import Any

from domain.lead import LeadSubmission, Owner


def new_lead_text(owner: Owner, lead: LeadSubmission, score: int | None, grade: str | None) -> str:
    """The plain-text fallback of the new-lead message (also what the log shows)."""
    who = lead.full_name
    company = f" at {lead.company}" if lead.company else ""
    scored = f", score {score} ({grade})" if score is not None else ""
    return f"New lead for {owner.name}: {who}{company} <{lead.email}>{scored}"


def new_lead_blocks(
    owner: Owner,
    lead: LeadSubmission,
    score: int | None,
    grade: str | None,
    lead_url: str | None = None,
) -> list[dict[str, Any]]:
    """Block Kit for the new-lead message sent to its owner."""
    mention = f"<@{owner.slack_user_id}>" if owner.slack_user_id else owner.name
    facts = [
        ("Email", lead.email),
        ("Company", lead.company or "—"),
        ("Title", lead.title or "—"),
        ("Phone", lead.phone or "—"),
        ("Score", f"{score} ({grade})" if score is not None else "—"),
        ("Source", lead.source or lead.utm_source or "web form"),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{mention}, you have a new lead: *{lead.full_name}*",
            },
        },
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts],
        },
    ]
    if lead.message:
        blocks.append(
            {"type": "context", "elements": [{"type": "plain_text", "text": lead.message[:500]}]}
        )
    if lead_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open lead"},
                        "url": lead_url,
                        "action_id": "open_lead",
                    }
                ],
            }
        )
    return blocks
