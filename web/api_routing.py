"""What routing does and would do, over the JSON API behind the bearer token: simulate one
lead against the published configuration or the draft, replay the last real leads under
the draft, and a pool's fairness over a period.

All three only read. A simulation reads the pools' rotation states and never stores
them; a replay carries the draft's rotation from lead to lead in memory, starting from the
credits recorded in the replayed decisions (``domain.routing_review``, which also counts
fairness). ``simulate_lead`` and ``replay_draft`` also serve the admin's simulate and
replay pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from connectors.base import ConnectorError
from domain import routing_review as review
from domain.config import ConfigError, Strategy
from domain.config_checks import problems
from domain.crm import crm_label
from domain.lead import lead_key
from domain.routing import Router, RoutingSnapshot
from domain.routing_review import RepRef
from domain.rules import Facts, facts_of
from domain.scoring import score_lead
from store import availability
from store import config as config_store
from store import leads as lead_store
from store import reps as rep_store
from store.models import utcnow
from store.routing import open_leads
from web.api_config import current_draft, in_force
from web.api_models import ERRORS, Fairness, Replayed, ReplayIn, Simulated, SimulateIn
from web.config_document import errors, refused
from web.deps import ApiViewer, AppContext, BearerDoc, Context

router = APIRouter(prefix="/api/v1", tags=["routing"])


# ------------------------------------------------------------------------------ helpers


def draft_router(session: Session, context: AppContext) -> tuple[int, Router]:
    """The draft compiled and its revision; ``ConfigError`` listing its problems when it
    has any (it could not route)."""
    revision, config = current_draft(session, context)
    found = problems(config)
    if found:
        raise ConfigError(found)
    return revision, Router.build(config, 0)


def _draft_refused(err: ConfigError) -> HTTPException:
    message = "the draft has problems; fix them first (POST /api/v1/config/validate)"
    return HTTPException(422, [{"field": "config", "message": message}, *errors(err.problems)])


def _rep(router: Router, email: str | None) -> RepRef | None:
    if email is None:
        return None
    rep = router.reps.get(email)
    return RepRef(name=rep.name if rep is not None else email, email=email)


def _loads(session: Session, router: Router) -> dict[str, int]:
    wanted = any(p.strategy is Strategy.least_loaded for p in router.pools.values())
    return open_leads(session) if wanted else {}


def _account(
    context: AppContext, session: Session, router: Router, facts: Facts
) -> tuple[str | None, str | None, str | None]:
    """The account owner's email, the account as the decision names it, and a note when
    the CRM was not asked."""
    if not router.wants_account_owner:
        return None, None, None
    try:
        found = context.crm().find_account(  # reads only
            email_domain=facts.get("email_domain"),
            website_domain=facts.get("website_domain"),
            company=facts.get("company"),
            free_mail=bool(facts.get("free_mail")),
        )
    except (ConnectorError, ValueError) as err:
        crm = crm_label(context.settings.crm_backend.value)
        note = f"not looked up: {crm} could not be asked ({err})"
        return None, None, note + ", so the lead counts as having no account"
    if found is None:
        return None, None, None
    owner_id = found.account.owner_id
    crm_name = context.settings.crm_backend.value
    owner = rep_store.email_for_crm_owner(session, owner_id, crm_name) if owner_id else None
    return owner, f"{found.account.name} (by {found.by}, {found.similarity:g}%)", None


# ------------------------------------------------------------------------------ simulate


@router.post("/simulate", response_model=Simulated, responses=ERRORS, dependencies=[BearerDoc])
async def simulate(body: SimulateIn, context: Context, _auth: ApiViewer) -> Simulated:
    """Where the lead would go now (or ``at``), under the published configuration or the
    draft, from the pools' current rotation. Nothing is stored."""
    try:
        return await run_in_threadpool(simulate_lead, context, body)
    except ConfigError as err:
        raise _draft_refused(err) from None


def simulate_lead(context: AppContext, body: SimulateIn) -> Simulated:
    """Score and route ``body.lead`` as ``POST /api/v1/simulate`` does (also the admin's
    simulate page); ``ConfigError`` when the draft is asked for and has problems."""
    lead = body.lead
    now = body.at or utcnow()
    with context.db.read() as session:  # a read session: nothing it does is committed
        revision: int | None = None
        version: int | None = None
        if body.config == "draft":
            revision, router = draft_router(session, context)
        else:
            version, config = in_force(session, context)
            router = Router.build(config, version)
        # Scored with the scoring model of the configuration it is routed under.
        config = router.config
        score = score_lead(lead, config.scoring, territories=config.territories)
        facts = facts_of(lead, score.score, score.grade)
        owner, account, note = _account(context, session, router, facts)
        stored = config_store.pool_states(session, list(router.pools))
        snapshot = RoutingSnapshot(
            pools={name: state for name, (state, _revision) in stored.items()},
            open_leads=_loads(session, router),
            account_owner=owner,
            account=account,
            away_until=availability.away_until(session, now),
        )
    routed = router.route(facts, snapshot, now, seed=lead_key(lead.email, context.lead_id_secret))
    decision = routed.decision
    explanation = {**decision.explanation, "config_version": version}
    if note is not None:
        explanation["account_lookup"] = note
    if version == 0:
        explanation["note"] = "nothing is published: the default team shares leads round-robin"
    return Simulated(
        config=body.config,
        config_version=version,
        draft_revision=revision,
        at=now,
        score=score.score,
        grade=score.grade,
        rule=decision.rule,
        pool=decision.pool,
        rep=_rep(router, decision.rep),
        queue=decision.queue,
        fallback=decision.fallback,
        reason=decision.reason,
        explanation=explanation,
        scoring=score,
    )


# ------------------------------------------------------------------------------ replay


@router.post("/replay", response_model=Replayed, responses=ERRORS, dependencies=[BearerDoc])
async def replay(context: Context, _auth: ApiViewer, body: ReplayIn | None = None) -> Replayed:
    """Who got each of the last ``limit`` leads then, and who would get it under the
    draft, its rotation replayed lead by lead at each one's decision time from the
    earliest credits recorded in those decisions. Nothing is stored."""
    limit = body.limit if body is not None else ReplayIn().limit
    try:
        return await run_in_threadpool(replay_draft, context, limit)
    except ConfigError as err:
        raise _draft_refused(err) from None


def replay_draft(context: AppContext, limit: int) -> Replayed:
    """The last ``limit`` routed leads replayed under the draft, as ``POST
    /api/v1/replay`` answers (also the admin's replay page); ``ConfigError`` when the
    draft has problems."""
    with context.db.read() as session:
        revision, router = draft_router(session, context)
        records = lead_store.routed_leads(session, limit=limit)
        loads = _loads(session, router)
    done = review.replay(router, records, loads)
    return Replayed(draft_revision=revision, **dict(done))


# ------------------------------------------------------------------------------ fairness


@router.get(
    "/pools/{name}/fairness", response_model=Fairness, responses=ERRORS, dependencies=[BearerDoc]
)
async def fairness(
    name: Annotated[str, Path(min_length=1, max_length=100, description="the pool's name")],
    context: Context,
    _auth: ApiViewer,
    days: Annotated[int, Query(ge=1, le=366, description="the period, in days")] = 7,
) -> Fairness:
    """How a pool of the published configuration shared its leads over the last ``days``:
    per member its weight, expected and actual share, the drift, and why it was skipped."""

    def run() -> Fairness:
        since = utcnow() - timedelta(days=days)
        with context.db.read() as session:
            version, config = in_force(session, context)
            pool = next((p for p in config.pools if p.name == name), None)
            if pool is None:
                where = f"version {version}" if version else "the configuration in force"
                raise refused(404, "name", f"no pool {name!r} in {where}")
            records = lead_store.routed_leads(session, since=since)
        shared = review.fairness(pool, config.reps, records)
        return Fairness(config_version=version, days=days, since=since, **dict(shared))

    return await run_in_threadpool(run)
