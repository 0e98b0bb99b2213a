"""The routing engine's budgets of DESIGN.md, in one run, on generated rule sets and leads:

- decision time per lead (the lead's facts, then the first matching rule) with 10, 100
  and 1,000 rules over ``--leads`` (100,000) leads: under 100 µs at 1,000 rules (aim:
  50 µs), and at least 10x faster than the same rules in the ``rule-engine`` library
  (https://github.com/zeroSteiner/rule-engine), measured in the same run;
- replay of ``--replay`` (10,000) leads against the 1,000-rule configuration through
  ``Router.route``, with each pool's rotation state carried from lead to lead: under 2 s.

Rule sets look like a sales team's: territory rules on countries and US states, company
size tiers, industry and source equality, campaign rules, regexes on the title, any/all
nesting, a catch-all last; about a sixth of the rules have no equality condition to index
(size bands, any-of). Leads match early, late, or only the catch-all, and spell countries
and states every way forms do. Everything is generated from ``--seed``.

The library is given each lead's facts already normalised (case-folded text, ISO country
codes), untimed, and the rules written against them; ours is timed from the submission,
normalisation included, so the ratio errs in the library's favour. Its first match is
checked against ours on every lead it evaluates. rule-engine takes milliseconds per lead
at 1,000 rules, so it runs on an evenly spaced sample of the leads (``--library-ms``
bounds its time per round); ours is timed on that sample too, and the ratio compares the
two on the same leads.

Medians over ``--rounds`` (3) rounds of time.perf_counter. Report to stdout, progress
to stderr, and the last line of stdout is one JSON object. Exit code 1 only when the
bench itself broke (the engines disagree).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rule_engine  # type: ignore[import-untyped]  # noqa: E402

from domain.config import AllOf, AnyOf, Condition, Op, RoutingConfig, When  # noqa: E402
from domain.config_checks import validated  # noqa: E402
from domain.lead import LeadSubmission  # noqa: E402
from domain.rotation import PoolState  # noqa: E402
from domain.routing import Router, RoutingSnapshot  # noqa: E402
from domain.rules import CompiledRules, Facts, facts_of  # noqa: E402

DECISION_BUDGET_US = 100.0
DECISION_AIM_US = 50.0
RATIO_BUDGET = 10.0
REPLAY_BUDGET_S = 2.0
RULE_COUNTS = (10, 100, 1000)

Leads = list[tuple[LeadSubmission, int | None, str | None]]  # submission, score, grade


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------ the vocabulary
# fmt: off
TERRITORIES: dict[str, list[str]] = {
    "DACH": ["DE", "AT", "CH"], "Nordics": ["SE", "NO", "DK", "FI", "IS"],
    "Benelux": ["NL", "BE", "LU"], "UK and Ireland": ["GB", "IE"], "France": ["FR", "MC"],
    "Iberia": ["ES", "PT"], "Italy": ["IT", "MT"], "CEE": ["PL", "CZ", "SK", "HU", "RO", "BG"],
    "Baltics": ["EE", "LV", "LT"], "Canada": ["CA"],
    "LATAM": ["BR", "MX", "AR", "CL", "CO", "PE"], "ANZ": ["AU", "NZ"], "Japan": ["JP"],
    "India": ["IN"], "SEA": ["SG", "MY", "TH", "ID", "PH", "VN"],
    "Middle East": ["AE", "SA", "IL", "QA"], "Africa": ["ZA", "NG", "KE", "EG"],
}
US_REGIONS = {
    "US West": ["CA", "WA", "OR", "NV", "AZ", "UT", "CO", "ID", "MT", "WY", "NM"],
    "US Central": ["TX", "IL", "MN", "MO", "WI", "OK", "KS", "NE", "IA", "ND", "SD"],
    "US East": ["NY", "MA", "NJ", "PA", "FL", "GA", "VA", "NC", "MD", "CT", "OH", "MI"],
}
POSTAL_TERRITORIES = {
    "London": ("GB", ["EC", "WC", "SW1", "W1", "E1"]),
    "Bay Area": ("US", ["940", "941", "943", "945", "950"]),
    "Berlin": ("DE", ["10", "12", "13", "14"]),
}
STATE_NAMES = {
    "CA": "California", "WA": "Washington", "OR": "Oregon", "TX": "Texas", "NY": "New York",
    "MA": "Massachusetts", "IL": "Illinois", "FL": "Florida", "GA": "Georgia", "CO": "Colorado",
}
COUNTRY_SPELLINGS = {
    "DE": ["Germany", "deu", "Deutschland"], "GB": ["United Kingdom", "UK", "gbr"],
    "US": ["United States", "USA", "usa", "United States of America"],
    "FR": ["France", "fra"], "NL": ["Netherlands", "The Netherlands"], "JP": ["Japan", "jpn"],
    "BR": ["Brazil"], "IN": ["India"],
}
INDUSTRIES = [
    "software", "fintech", "banking", "insurance", "healthcare", "pharma", "retail",
    "ecommerce", "manufacturing", "automotive", "logistics", "energy", "telecom", "media",
    "education", "government", "nonprofit", "real estate", "hospitality", "legal",
]
SOURCES = ["demo", "pricing", "contact", "webinar", "ebook", "partner", "event", "trial",
           "newsletter", "chat"]
TITLES = [
    "VP Sales", "VP of Engineering", "Head of Growth", "Chief Revenue Officer", "CTO", "CEO",
    "Founder & CEO", "Director of Marketing", "Marketing Manager", "Software Engineer",
    "Sales Development Rep", "Procurement Lead", "IT Administrator", "Student", "Intern",
    "Operations Manager", "Data Scientist", "Product Manager", "Head of IT", "Consultant",
]
TITLE_PATTERNS = [
    r"^(vp|vice president)\b", r"\b(chief|cxo|c[tfior]o)\b", r"^head of", r"director",
    r"founder|owner", r"engineer|developer", r"procurement|purchasing", r"student|intern",
]
# fmt: on
FREEMAIL = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de"]
SIZE_TIERS = [10, 50, 200, 500, 1000, 5000]
CAMPAIGNS = [f"campaign-{n:03d}" for n in range(300)]
ALL_COUNTRIES = sorted({c for cs in TERRITORIES.values() for c in cs} | {"US"})
US_STATES = sorted({s for states in US_REGIONS.values() for s in states})
UNCOVERED = ["Narnia", "CN", "KR", "TR", "UA", "PK"]  # no territory has them


# -------------------------------------------------------------------- rule sets


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out


def generate_rules(count: int, rnd: random.Random) -> list[dict[str, Any]]:
    """``count`` rules as a team would write them, the last one a catch-all."""
    territories = [*TERRITORIES, *US_REGIONS, *POSTAL_TERRITORIES]
    # fmt: off
    templates: list[tuple[float, Callable[[], dict[str, Any]]]] = [
        # a territory and a size tier
        (0.30, lambda: {"all": [cond("country", "in_territory", rnd.choice(territories)),
                                cond("company_size", "gte", rnd.choice(SIZE_TIERS))]}),
        # a few countries and a few industries
        (0.15, lambda: {"all": [cond("country", "in", rnd.sample(ALL_COUNTRIES, 3)),
                                cond("industry", "in", rnd.sample(INDUSTRIES, 2))]}),
        # inbound source and seniority
        (0.10, lambda: {"all": [cond("source", "eq", rnd.choice(SOURCES)),
                                cond("title", "regex", rnd.choice(TITLE_PATTERNS))]}),
        # a campaign's leads
        (0.10, lambda: cond("utm_campaign", "eq", rnd.choice(CAMPAIGNS))),
        # US states by size band, states written as names or codes, conditions in any order
        (0.12, lambda: {"all": rnd.sample([
            cond("country", "eq", "US"),
            cond("state", "in", [STATE_NAMES.get(s, s) if rnd.random() < 0.5 else s
                                 for s in rnd.sample(US_STATES, 4)]),
            cond("company_size", "between", sorted(rnd.sample(SIZE_TIERS, 2))),
        ], 3)}),
        # hot leads of an industry
        (0.08, lambda: {"all": [cond("grade", "eq", "hot"),
                                cond("industry", "eq", rnd.choice(INDUSTRIES))]}),
        # no equality to index: an industry or a big company's executives ...
        (0.10, lambda: {"any": [cond("industry", "eq", rnd.choice(INDUSTRIES)),
                                {"all": [cond("company_size", "gte", rnd.choice(SIZE_TIERS)),
                                         cond("title", "regex", rnd.choice(TITLE_PATTERNS))]}]}),
        # ... and size bands away from free mail
        (0.05, lambda: {"all": [cond("company_size", "between", sorted(rnd.sample(SIZE_TIERS, 2))),
                                cond("free_mail", "eq", False),
                                cond("title", "not_empty")]}),
    ]
    # fmt: on
    weights = [w for w, _ in templates]
    rules = []
    for n in range(count - 1):
        make = rnd.choices([t for _, t in templates], weights)[0]
        rules.append(
            {"name": f"rule {n:04d}", "when": make(), "assign": {"pool": f"pool {n % 40}"}}
        )
    rules.append({"name": "everyone else", "assign": {"pool": "inbound"}})
    return rules


def generate_config(rules: list[dict[str, Any]], rnd: random.Random) -> RoutingConfig:
    reps = []
    for n in range(200):
        rep: dict[str, Any] = {"email": f"rep{n:03d}@example.com", "name": f"Rep {n:03d}"}
        rep["timezone"] = rnd.choice(
            ["UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo"]
        )
        if rnd.random() < 0.5:
            rep["working_hours"] = {
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "start": "08:00",
                "end": "18:00",
            }
        if rnd.random() < 0.2:
            day = 1 + rnd.randrange(10)
            rep["out_of_office"] = [
                {"from": f"2026-03-{day:02d}", "until": f"2026-03-{day + 2:02d}"}
            ]
        reps.append(rep)
    pools = []
    for n in [*range(40), "inbound"]:
        members = rnd.sample(range(200), 6)
        pools.append(
            {
                "name": f"pool {n}" if isinstance(n, int) else n,
                "strategy": rnd.choice(["weighted", "weighted", "round_robin", "least_loaded"]),
                "timezone": rnd.choice(["UTC", "Europe/Berlin", "America/New_York"]),
                "members": [
                    {
                        "rep": f"rep{m:03d}@example.com",
                        "weight": rnd.randint(1, 4),
                        "daily_cap": rnd.choice([None, None, 20, 50]),
                    }
                    for m in members
                ],
                "fallback": {"queue": "unassigned"},
                "on_return": {"catch_up": rnd.random() < 0.3, "max_extra_per_day": 3},
            }
        )
    territories = [{"name": name, "countries": cs} for name, cs in TERRITORIES.items()]
    territories += [{"name": n, "countries": ["US"], "states": s} for n, s in US_REGIONS.items()]
    territories += [
        {"name": n, "countries": [c], "postal_prefixes": p}
        for n, (c, p) in POSTAL_TERRITORIES.items()
    ]
    return validated(
        {
            "reps": reps,
            "pools": pools,
            "territories": territories,
            "rules": rules,
            "fallback": {"pool": "inbound"},
        }
    )


# ------------------------------------------------------------------------ leads


def generate_leads(count: int, rnd: random.Random) -> Leads:
    leads = []
    for n in range(count):
        code = rnd.choice(ALL_COUNTRIES) if rnd.random() < 0.85 else rnd.choice(UNCOVERED)
        if rnd.random() < 0.25:
            code = "US"
        country: str | None = code
        if code in COUNTRY_SPELLINGS and rnd.random() < 0.5:
            country = rnd.choice(COUNTRY_SPELLINGS[code])
        elif rnd.random() < 0.05:
            country = None
        state = postal = None
        if code == "US":
            state = rnd.choice(US_STATES)
            state = STATE_NAMES.get(state, state) if rnd.random() < 0.5 else state
            postal = f"{rnd.randrange(100000):05d}"
        elif code in ("GB", "DE"):
            postal = rnd.choice(["EC1A 1BB", "SW1A 2AA", "M1 1AE", "10115", "80331", "13086"])
        domain = rnd.choice(FREEMAIL) if rnd.random() < 0.25 else f"company{n % 5000}.com"
        score = rnd.randrange(101) if rnd.random() < 0.9 else None
        grade = (
            None if score is None else "hot" if score >= 70 else "warm" if score >= 40 else "cold"
        )
        leads.append(
            (
                LeadSubmission(
                    email=f"lead{n}@{domain}",
                    first_name="Alex",
                    company=f"Company {n % 5000}",
                    title=rnd.choice(TITLES) if rnd.random() < 0.85 else None,
                    country=country,
                    state=state,
                    postal_code=postal,
                    company_size=(int(10 ** rnd.uniform(0, 5)) or 1)
                    if rnd.random() < 0.8
                    else None,
                    industry=rnd.choice([*INDUSTRIES, "Other"]).title()
                    if rnd.random() < 0.8
                    else None,
                    source=rnd.choice(SOURCES) if rnd.random() < 0.9 else None,
                    utm_campaign=rnd.choice(CAMPAIGNS) if rnd.random() < 0.3 else None,
                    website=f"https://www.company{n % 5000}.com",
                ),
                score,
                grade,
            )
        )
    return leads


# ------------------------------------------------------------- rule-engine rules


def literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return json.dumps(value)


def expected(field: str, value: Any) -> Any:
    """A rule's value in the form the facts hold it (what the library is given)."""
    if isinstance(value, list):
        return [expected(field, v) for v in value]
    if isinstance(value, str) and field == "state":
        return next((code for code, name in STATE_NAMES.items() if name == value), value).casefold()
    if isinstance(value, str) and field != "country":
        return value.casefold()
    return value


def library_text(node: When | None, territories: dict[str, Any]) -> str:
    """The same condition in rule-engine's language, over the lead's facts."""
    if node is None:
        return "true"
    if isinstance(node, AllOf | AnyOf):
        children = node.all if isinstance(node, AllOf) else node.any
        joiner = " and " if isinstance(node, AllOf) else " or "
        return "(" + joiner.join(library_text(c, territories) for c in children) + ")"
    assert isinstance(node, Condition)
    f, op, v = node.field.replace(".", "_"), node.op, expected(node.field, node.value)
    guard = f"{f} != null and "
    if op is Op.in_territory:
        t = territories[str(node.value)]
        parts = [f"country in {literal(list(t.countries))}"] if t.countries else []
        if t.states:
            parts.append(f"state in {literal([expected('state', s) for s in t.states])}")
        if t.postal_prefixes:
            starts = " or ".join(
                f"postal_code.starts_with({literal(p.casefold())})" for p in t.postal_prefixes
            )
            parts.append(f"postal_code != null and ({starts})")
        return "(" + " and ".join(parts) + ")"
    simple = {Op.eq: "==", Op.ne: "!=", Op.gt: ">", Op.gte: ">=", Op.lt: "<", Op.lte: "<="}
    if op in (Op.eq, Op.ne):
        return f"({f} {simple[op]} {literal(v)})"
    if op in (Op.gt, Op.gte, Op.lt, Op.lte):
        return f"({guard}{f} {simple[op]} {literal(v)})"
    if op is Op.between:
        return f"({guard}{f} >= {literal(v[0])} and {f} <= {literal(v[1])})"
    if op is Op.in_:
        return f"({f} in {literal(v)})"
    if op is Op.not_in:
        return f"(not ({f} in {literal(v)}))"
    if op is Op.contains:
        return f"({guard}{literal(v)} in {f})"
    if op is Op.starts_with:
        return f"({guard}{f}.starts_with({literal(v)}))"
    if op is Op.ends_with:
        return f"({guard}{f}.ends_with({literal(v)}))"
    if op is Op.regex:
        return f"({f} =~~ {literal('(?i)' + str(node.value))})"
    if op is Op.empty:
        return f'({f} == null or {f} == "")'
    assert op is Op.not_empty
    return f'({f} != null and {f} != "")'


# ------------------------------------------------------------------- measuring


class Timer:
    """Wall and CPU seconds of repeated rounds of several bodies, interleaved round by
    round so that a change in the machine's load weighs on all of them alike."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.results: dict[str, object] = {}

    def rounds(self, count: int, bodies: dict[str, Callable[[], object]]) -> None:
        for _ in range(count):
            for name, body in bodies.items():
                gc.collect()
                wall, cpu = time.perf_counter(), time.process_time()
                self.results[name] = body()
                self.wall.setdefault(name, []).append(time.perf_counter() - wall)
                self.cpu.setdefault(name, []).append(time.process_time() - cpu)

    def median(self, name: str, per: int = 1) -> float:
        return statistics.median(self.wall[name]) / per

    def median_cpu(self, name: str, per: int = 1) -> float:
        return statistics.median(self.cpu[name]) / per


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all processes), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def ours_over(compiled: CompiledRules, leads: Leads) -> list[int | None]:
    first_match = compiled.first_match
    return [first_match(facts_of(lead, score, grade))[0] for lead, score, grade in leads]


def library_over(rules: list[rule_engine.Rule], facts: list[dict[str, Any]]) -> list[int | None]:
    out: list[int | None] = []
    for thing in facts:
        found = None
        for position, rule in enumerate(rules):
            if rule.matches(thing):
                found = position
                break
        out.append(found)
    return out


def library_facts(facts: Facts) -> dict[str, Any]:
    return {k.replace(".", "_"): v for k, v in facts.items()}


def replay(router: Router, leads: Leads) -> dict[str, int]:
    """Route every lead in turn, committing each pool's state after its decision."""
    snapshot = RoutingSnapshot(pools={name: PoolState() for name in router.pools})
    start = datetime(2026, 3, 2, 7, tzinfo=UTC)  # a Monday
    outcomes = {"rep": 0, "queue": 0}
    for n, (lead, score, grade) in enumerate(leads):
        now = start + timedelta(seconds=n * 60)
        routed = router.route(facts_of(lead, score, grade), snapshot, now, seed=f"lead-{n}")
        if routed.pool is not None and routed.state is not None:
            snapshot.pools[routed.pool] = routed.state
        outcomes["rep" if routed.decision.rep else "queue"] += 1
    return outcomes


def rule_count_row(
    args: argparse.Namespace, count: int, config: RoutingConfig, leads: Leads
) -> dict[str, Any]:
    compiled = CompiledRules.build(config.rules, config.territories)
    territories = {t.name: t for t in config.territories}
    context = rule_engine.Context(default_value=None)
    library = [rule_engine.Rule(library_text(r.when, territories), context=context)
               for r in config.rules]  # fmt: skip
    matches = [compiled.first_match(facts_of(*lead)) for lead in leads]  # untimed; warms up
    # The library's sample: as many evenly spaced leads as fit its time per round.
    probe = [library_facts(facts_of(*lead)) for lead in leads[:: max(1, len(leads) // 50)]]
    started = time.perf_counter()
    library_over(library, probe)
    per_lead = (time.perf_counter() - started) / len(probe)
    size = max(50, min(len(leads), int(args.library_ms / 1000 / per_lead)))
    step = max(1, len(leads) // size)
    sample = leads[::step][:size]
    sample_facts = [library_facts(facts_of(*lead)) for lead in sample]
    log(
        f"{count} rules: ours over {len(leads):,} leads, then ours and rule-engine over "
        f"{len(sample):,} of them, {args.rounds} rounds"
    )
    timer = Timer()
    timer.rounds(args.rounds, {"ours": lambda: ours_over(compiled, leads)})
    timer.rounds(
        args.rounds,
        {
            "ours on the sample": lambda: ours_over(compiled, sample),
            "library": lambda: library_over(library, sample_facts),
        },
    )
    ours_positions = [position for position, _ in matches[::step][:size]]
    library_positions = timer.results["library"]
    assert isinstance(library_positions, list)
    positions = [position for position, _ in matches]
    catch_all = len(compiled.rules) - 1
    return {
        "rules": count,
        "leads": len(leads),
        "ours_us": timer.median("ours", len(leads)) * 1e6,
        "ours_cpu_us": timer.median_cpu("ours", len(leads)) * 1e6,
        "ours_rounds_us": [t / len(leads) * 1e6 for t in timer.wall["ours"]],
        "sample": len(sample),
        "ours_sample_us": timer.median("ours on the sample", len(sample)) * 1e6,
        "library_us": timer.median("library", len(sample)) * 1e6,
        "library_rounds_us": [t / len(sample) * 1e6 for t in timer.wall["library"]],
        "ratio": timer.median("library") / timer.median("ours on the sample"),
        "disagree": sum(a != b for a, b in zip(ours_positions, library_positions, strict=True)),
        "tested_mean": statistics.fmean(tested for _, tested in matches),
        "unindexed": len(compiled.unindexed) / len(compiled.rules),
        "matched_first_tenth": sum(p is not None and p < max(1, count // 10) for p in positions)
        / len(positions),
        "matched_catch_all": sum(p == catch_all for p in positions) / len(positions),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(args.seed)
    log(f"generating {args.leads:,} leads (seed {args.seed})")
    leads = generate_leads(args.leads, rnd)
    busy, ours_cpu, wall = machine_busy_s(), time.process_time(), time.perf_counter()
    rows = []
    configs: dict[int, RoutingConfig] = {}
    for count in RULE_COUNTS:
        configs[count] = generate_config(
            generate_rules(count, random.Random(args.seed + count)), rnd
        )
        rows.append(rule_count_row(args, count, configs[count], leads))
    router = Router.build(configs[1000], version=1)
    replay_leads = leads[: args.replay]
    log(f"replay: {len(replay_leads):,} leads through Router.route, {args.rounds} rounds")
    timer = Timer()
    timer.rounds(
        args.rounds,
        {
            "facts": lambda: [facts_of(*lead) for lead in replay_leads],
            "replay": lambda: replay(router, replay_leads),
        },
    )
    outcomes = timer.results["replay"]
    # Other tenants' share of the machine while we measured: busy CPU that was not ours.
    others = max(0.0, machine_busy_s() - busy - (time.process_time() - ours_cpu)) / (
        (time.perf_counter() - wall) * (os.cpu_count() or 1)
    )
    return {
        "rows": rows,
        "facts_us": timer.median("facts", len(replay_leads)) * 1e6,
        "replay_s": timer.median("replay"),
        "replay_cpu_s": timer.median_cpu("replay"),
        "replay_rounds_s": timer.wall["replay"],
        "replay_leads": len(replay_leads),
        "replay_outcomes": outcomes,
        "others_share": others,
    }


CONTENDED_SHARE = 0.25  # other tenants above this share of the CPU: say the run is noisy


def report(args: argparse.Namespace, res: dict[str, Any], started: float) -> dict[str, Any]:
    rows = res["rows"]
    at_1000 = next(r for r in rows if r["rules"] == 1000)
    decision_ok = at_1000["ours_us"] < DECISION_BUDGET_US
    ratio_ok = all(r["ratio"] >= RATIO_BUDGET for r in rows)
    replay_ok = res["replay_s"] < REPLAY_BUDGET_S
    contended = res["others_share"] > CONTENDED_SHARE
    out = print
    out("")
    out(
        f"Leadflow routing bench  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {os.cpu_count()} cores"
        f"  Python {platform.python_version()}  rule-engine {rule_engine.__version__}  "
        f"run {time.time() - started:.0f} s"
    )
    out(
        f"µs per lead, median of {args.rounds} rounds (wall clock; cpu = this process's CPU "
        "time). ours = facts_of + first_match, from the submission; rule-engine = the first "
        "match over facts normalised beforehand, on an evenly spaced sample of the leads"
    )
    out("")
    header = (
        f"{'rules':>6}{'leads':>9}{'ours µs':>9}{'cpu µs':>8}{'tested':>8}{'unindexed':>11}"
        f"{'sample':>8}"
        f"{'ours µs':>9}{'rule-engine µs':>16}{'ratio':>7}{'agree':>7}{'early':>7}"
        f"{'catch-all':>11}"
    )
    out(header)
    out("-" * len(header))
    for r in rows:
        out(
            f"{r['rules']:>6}{r['leads']:>9,}{r['ours_us']:>9.1f}{r['ours_cpu_us']:>8.1f}"
            f"{r['tested_mean']:>8.1f}{r['unindexed']:>11.0%}{r['sample']:>8,}{r['ours_sample_us']:>9.1f}"
            f"{r['library_us']:>16.1f}{r['ratio']:>6.0f}x"
            f"{'yes' if not r['disagree'] else r['disagree']:>7}"
            f"{r['matched_first_tenth']:>7.0%}{r['matched_catch_all']:>11.0%}"
        )
    out(
        "tested: rules evaluated per lead (the index skips the rest); unindexed: rules without "
        "an equality condition to index; early: leads taken by a rule in the first tenth; "
        "catch-all: leads no other rule takes"
    )
    out(f"facts_of alone: {res['facts_us']:.1f} µs per lead")
    out("")
    outcomes = res["replay_outcomes"]
    per_lead = res["replay_s"] / res["replay_leads"] * 1e6
    out(
        f"replay: {res['replay_leads']:,} leads through Router.route at 1,000 rules, rotation "
        f"state carried from lead to lead: {res['replay_s']:.2f} s, {per_lead:.0f} µs per lead "
        f"(cpu {res['replay_cpu_s']:.2f} s; {outcomes['rep']:,} to a rep, "
        f"{outcomes['queue']:,} queued)"
    )
    out(f"other tenants used {res['others_share']:.0%} of the machine's CPU meanwhile")
    out("")
    out(
        f"budget: decision at 1,000 rules < {DECISION_BUDGET_US:.0f} µs "
        f"(aim {DECISION_AIM_US:.0f}): {at_1000['ours_us']:.1f} µs -> "
        f"{'met' if decision_ok else 'MISSED'}"
        f"{'' if at_1000['ours_us'] < DECISION_AIM_US else ' (above the aim)'}"
    )
    out(
        f"budget: at least {RATIO_BUDGET:.0f}x faster than rule-engine: "
        + ", ".join(f"{r['ratio']:.0f}x at {r['rules']}" for r in rows)
        + f" -> {'met' if ratio_ok else 'MISSED'}"
    )
    out(
        f"budget: replay of {res['replay_leads']:,} leads < {REPLAY_BUDGET_S:.0f} s: "
        f"{res['replay_s']:.2f} s -> {'met' if replay_ok else 'MISSED'}"
    )
    if contended:
        out(
            f"warning: other tenants used {res['others_share']:.0%} of the CPU during the run; "
            "wall-clock figures are inflated by them (compare the cpu figures)"
        )

    def per_count(key: str, digits: int = 1) -> dict[str, float]:
        return {str(r["rules"]): round(r[key], digits) for r in rows}

    return {
        "bench": "routing",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "seed": args.seed,
        "leads": args.leads,
        "rounds": args.rounds,
        "decision_us": per_count("ours_us", 2),
        "decision_cpu_us": per_count("ours_cpu_us", 2),
        "decision_sample_us": per_count("ours_sample_us", 2),
        "library_us": per_count("library_us"),
        "library_sample": {str(r["rules"]): r["sample"] for r in rows},
        "ratio": per_count("ratio"),
        "rules_tested_mean": per_count("tested_mean"),
        "rules_unindexed": per_count("unindexed", 3),
        "matched_catch_all": per_count("matched_catch_all", 3),
        "facts_us": round(res["facts_us"], 2),
        "replay_s": round(res["replay_s"], 3),
        "replay_cpu_s": round(res["replay_cpu_s"], 3),
        "replay_leads": res["replay_leads"],
        "decision_budget_us": DECISION_BUDGET_US,
        "decision_ok": decision_ok,
        "decision_aim_ok": at_1000["ours_us"] < DECISION_AIM_US,
        "ratio_budget": RATIO_BUDGET,
        "ratio_ok": ratio_ok,
        "replay_budget_s": REPLAY_BUDGET_S,
        "replay_ok": replay_ok,
        "others_cpu_pct": round(res["others_share"] * 100),
        "contended": contended,
        "disagreements": sum(r["disagree"] for r in rows),
        "elapsed_s": round(time.time() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=100_000, help="generated leads")
    parser.add_argument("--replay", type=int, default=10_000, help="leads replayed")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, median taken")
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument(
        "--library-ms", type=float, default=1500, help="rule-engine's time per round, about"
    )
    args = parser.parse_args(argv)
    started = time.time()
    try:
        res = bench(args)
    except Exception as err:
        log(f"the bench broke: {type(err).__name__}: {err}")
        print(json.dumps({"bench": "routing", "error": f"{type(err).__name__}: {err}"}))
        return 1
    summary = report(args, res, started)
    if summary["disagreements"]:
        log(f"rule-engine and ours disagree on {summary['disagreements']} leads")
    print(json.dumps(summary))
    return 1 if summary["disagreements"] else 0


if __name__ == "__main__":
    sys.exit(main())
