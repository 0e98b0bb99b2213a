"""The shape of a KPI report and its CSV: one figure (``Kpi``), the query a report
answers (``KpiQuery``), the report with its groups (``KpiReport``, the API's JSON body),
and ``csv_rows``, the same figures as CSV with the same digits. ``domain.kpis`` computes
the figures and exports all of this too.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

GROUP_BYS = ("rep", "pool", "source", "territory", "day", "week", "month", "quarter")
CSV_HEADER = ("group", "kpi", "value", "count", "of", "unit", "note")


class Kpi(BaseModel):
    """One figure. ``value`` is None only when there is nothing to compute it from (its
    ``note`` says what is missing), and for the funnel, whose figures are its stages."""

    value: float | None
    count: int | None  # a rate's numerator; otherwise the leads or deals it covers
    of: int | None  # a rate's denominator; None for other figures
    unit: str
    definition: str
    note: str | None = None
    small_sample: bool = False
    mean: float | None = None  # follow_up_time
    p90: float | None = None  # follow_up_time
    first_contact_days: float | None = None  # sales_cycle_length
    stages: dict[str, int] | None = None  # funnel: leads per FUNNEL_STAGES
    leak: str | None = None  # funnel: "leads → meetings", the weakest step


class KpiQuery(BaseModel):
    """Which leads a report covers (created from ``start`` to ``end``, both included, in
    the installation's timezone) and how it is grouped."""

    start: date
    end: date
    group_by: str | None = None
    pools: list[str] | None = None
    reps: list[str] | None = None
    sources: list[str] | None = None

    @model_validator(mode="after")
    def _checked(self) -> KpiQuery:
        if self.end < self.start:
            raise ValueError("the end date must not be before the start date")
        if self.group_by is not None and self.group_by not in GROUP_BYS:
            raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}")
        return self


class KpiGroup(BaseModel):
    key: str
    kpis: dict[str, Kpi]


class KpiReport(BaseModel):
    """The API's JSON body is ``report.model_dump(by_alias=True)``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    kpis: dict[str, Kpi]
    groups: list[KpiGroup] = Field(default_factory=list)


# ------------------------------------------------------------------------------ CSV


def _text(value: float | int | str | None) -> str:
    """A value as the JSON writes it: floats by ``repr`` (the shortest exact digits)."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _rows(group: str, kpis: dict[str, Kpi]) -> list[list[str]]:
    rows = []
    for key, kpi in kpis.items():
        rows.append(
            [
                group,
                key,
                _text(kpi.value),
                _text(kpi.count),
                _text(kpi.of),
                kpi.unit,
                kpi.note or "",
            ]
        )
        extras: list[tuple[str, float | int | str | None, str]] = []
        if kpi.mean is not None or kpi.p90 is not None:
            extras += [("mean", kpi.mean, kpi.unit), ("p90", kpi.p90, kpi.unit)]
        if kpi.first_contact_days is not None:
            extras.append(("first_contact_days", kpi.first_contact_days, "days"))
        for stage, leads in (kpi.stages or {}).items():
            extras.append((stage, leads, "leads"))
        if kpi.leak is not None:
            extras.append(("leak", kpi.leak, "step"))
        for name, value, unit in extras:
            count = _text(value) if isinstance(value, int) else ""
            rows.append([group, f"{key}.{name}", _text(value), count, "", unit, ""])
    return rows


def csv_rows(report: KpiReport) -> list[list[str]]:
    """The report as CSV rows, header first: the whole period's figures (group ``all``),
    then each group's. Every KPI has its row, with the same digits as the JSON; the
    figures beside some of them follow it as ``key.name`` rows (``follow_up_time.mean``,
    ``follow_up_time.p90``, ``sales_cycle_length.first_contact_days``, ``funnel.leads`` …
    ``funnel.won`` with the count, ``funnel.leak`` with the step as its value)."""
    rows = [list(CSV_HEADER), *_rows("all", report.kpis)]
    for group in report.groups:
        rows.extend(_rows(group.key, group.kpis))
    return rows
