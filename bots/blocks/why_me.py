"""*Why me?*: the routing decision explained to the rep who got the lead, from the
decision Leadflow recorded (``leads.routing``): the rule and its conditions, the pool and
how its rotation chose, who was skipped and why."""

from __future__ import annotations

from typing import Any

from bots.blocks.lead_card import STRATEGIES
from bots.blocks.text import Blocks, context, cut, esc, section

SKIPS = {
    "away": "away",
    "outside_hours": "outside working hours",
    "capped": "at their cap",
    "inactive": "inactive",
    "zero_weight": "not in rotation",
}


def why_me_text(decision: dict[str, Any]) -> str:
    return f"Why this lead went to its owner: {decision.get('reason') or 'no decision recorded'}"


def why_me_blocks(decision: dict[str, Any], owner_name: str) -> Blocks:
    if not decision:
        return [section("No routing decision is recorded for this lead.")]
    explanation: dict[str, Any] = decision.get("explanation") or {}
    lines = [f"*Why {esc(cut(owner_name))} got this lead*"]
    rule = decision.get("rule")
    if decision.get("fallback") or rule == "fallback":
        lines.append("No rule matched, so the configuration's fallback took it.")
    elif rule:
        lines.append(f"Rule *{esc(cut(str(rule), 80))}* matched:")
        for condition in explanation.get("conditions") or []:
            seen = condition.get("lead_value")
            mark = "✓" if condition.get("matched") else "✗"
            value = condition.get("value")
            wanted = f" {esc(cut(str(value), 60))}" if value is not None else ""
            lines.append(
                f"  {mark} {esc(str(condition.get('field')))} {esc(str(condition.get('op')))}"
                f"{wanted} (the lead: {esc(cut(str(seen), 60))})"
            )
    account: dict[str, Any] = explanation.get("account") or {}
    if account.get("owner"):
        lines.append(f"The company's account belongs to {esc(cut(str(account['owner'])))}.")
    pool: dict[str, Any] = explanation.get("pool") or {}
    if pool.get("name"):
        how = STRATEGIES.get(str(pool.get("strategy")), "rotation")
        lines.append(f"Pool *{esc(cut(str(pool['name']), 80))}* ({how}).")
        before: dict[str, float] = pool.get("state_before") or {}
        if before:
            credits = ", ".join(
                f"{esc(cut(rep, 80))} {value:g}"
                for rep, value in sorted(before.items(), key=lambda kv: -kv[1])
            )
            lines.append(f"Rotation credits before the decision: {credits}.")
        tie: dict[str, Any] = pool.get("tie_break") or {}
        if tie.get("tied"):
            lines.append(f"Tied reps were separated by {esc(str(tie.get('by')))}.")
        for skipped in pool.get("skipped") or []:
            reason = SKIPS.get(str(skipped.get("reason")), str(skipped.get("reason")))
            lines.append(f"Skipped: {esc(cut(str(skipped.get('rep')), 80))} ({esc(reason)}).")
    blocks: Blocks = [section("\n".join(lines)[:2900])]
    version = decision.get("config_version")
    if version is not None:
        blocks.append(context(f"Routing configuration version {int(version)}"))
    return blocks
