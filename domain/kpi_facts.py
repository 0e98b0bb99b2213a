"""What a lead contributes to the KPIs, decided as its events arrive (pure).

The KPIs (``domain.kpis``) are computed over leads created in a period. So that a report
over 100,000 leads is a few aggregate queries and not a walk through a million events,
each lead carries its KPI facts: how it is sliced (pool, territory, source) and when it
first reached each milestone. ``store.leads.add_event`` applies ``milestone_of`` to every
event it records; the assignment sets the slices.

Decisions (docs/kpis.md):
- A milestone keeps its first time: a lead recycled through nurture and contacted again
  keeps the first contact (the KPIs measure the lead's first cycle; later cycles show in
  activity volume).
- The source is the lead's ``utm_source``, else its ``source``, else the system it came
  from (``web``, ``import``, …).
- Amounts are kept in minor units (cents) so sums are exact on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Event type → the lead's column holding the first time it happened.
MILESTONES: dict[str, str] = {
    "contacted": "first_contacted_at",
    "meeting_booked": "meeting_at",
    "qualified": "qualified_at",
    "proposal_sent": "proposal_at",
    "won": "won_at",
    "lost": "lost_at",
}

# Events people report about their work on a lead (from the API, Slack, the inbox or the
# CRM): what activity volume counts. Engagement is the lead's doing, not the rep's.
REP_EVENTS = frozenset(
    {
        "contacted",
        "meeting_booked",
        "no_response",
        "declined",
        "presentation_held",
        "presentation_failed",
        "qualified",
        "disqualified",
        "proposal_sent",
        "negotiation_started",
        "won",
        "lost",
    }
)

NO_SOURCE = "unknown"
SOURCE_MAX = 100


def source_of(data: Mapping[str, object], source_system: str | None = None) -> str:
    """The source a lead is reported under."""
    for key in ("utm_source", "source"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:SOURCE_MAX]
    return (source_system or NO_SOURCE)[:SOURCE_MAX]


def minor_units(amount: object) -> int | None:
    """An amount (number or numeric text) in hundredths, rounded half up; None when it is
    missing or not a finite number."""
    if amount is None or isinstance(amount, bool):
        return None
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def currency_of(value: object) -> str | None:
    """A three-letter currency code, upper case, or None."""
    if isinstance(value, str) and len(value.strip()) == 3 and value.strip().isalpha():
        return value.strip().upper()
    return None
