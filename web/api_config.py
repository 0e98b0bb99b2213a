"""The routing configuration over the JSON API, behind the bearer token: the published
version, the draft (JSON, or YAML with its revision in ``If-Match``) saved with optimistic
concurrency, validation, publish, rollback and the version history.

A draft may be saved with problems (``domain.config_checks.problems``: they come back with the
new revision); publishing refuses it. Reading and validating need a token with the viewer
role, saving the draft, publishing and rolling back the admin role (the installation
token is admin). Every change is recorded under the caller: "api" for the installation
token, the user's email for a user's token. Database work runs on the thread pool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from domain.config import ConfigError, Problem, RoutingConfig
from domain.config_checks import problems, validated
from domain.config_yaml import dump_yaml, load_yaml, with_lines
from store import config as config_store
from store.routing import implicit_config
from web.api_models import (
    ERRORS,
    DraftIn,
    DraftOut,
    DraftSaved,
    PublishedOut,
    PublishIn,
    RollbackIn,
    ValidateIn,
    ValidationOut,
    VersionInfoOut,
    VersionOut,
    body_doc,
)
from web.config_document import (
    JSON_TYPE,
    YAML_TYPE,
    YAML_TYPES,
    errors,
    parsed,
    read_document,
    refused,
    revision_of,
    shaped,
)
from web.deps import ApiAdmin, ApiViewer, AppContext, BearerDoc, Context

_CONCURRENT = "another publish happened at the same moment; try again"

router = APIRouter(prefix="/api/v1", tags=["routing configuration"])


def in_force(session: Session, context: AppContext) -> tuple[int, RoutingConfig]:
    """The configuration routing uses now and its version (0: nothing is published yet,
    the default team's active reps share leads round-robin)."""
    found = config_store.published(session)
    if found is not None:
        return found
    return 0, implicit_config(session, context.settings.default_team)


def current_draft(session: Session, context: AppContext) -> tuple[int, RoutingConfig]:
    """The draft and its revision; with none saved yet, revision 0 and the configuration
    in force (the starting point of a first draft)."""
    draft = config_store.get_draft(session)
    if draft is not None:
        return draft.revision, draft.config
    return 0, in_force(session, context)[1]


def publish_draft(
    context: AppContext, actor: str, note: str, expected_revision: int | None = None
) -> int:
    """Publish the draft as the next version, recorded under ``actor``; its number.
    ``ConfigError`` (nothing published) with every problem, each with its line in the
    draft's YAML; ``StaleDraft`` when the draft is no longer at ``expected_revision``;
    ``IntegrityError`` when another publish took that number meanwhile."""
    try:
        with context.db.session() as session:
            return config_store.publish(session, actor, note, expected_revision)
    except ConfigError as err:
        with context.db.read() as session:
            draft = config_store.get_draft(session)
        if draft is None:
            raise
        raise ConfigError(with_lines(dump_yaml(draft.config), err.problems)) from None


def rollback_to(context: AppContext, version: int, actor: str) -> int:
    """Publish version ``version`` again as a new version (and make it the draft),
    recorded under ``actor``; the new number. ``UnknownVersion``, ``ConfigError`` (it
    does not pass today's checks) or ``IntegrityError`` (a concurrent publish)."""
    with context.db.session() as session:
        return config_store.rollback(session, version, actor)


# ------------------------------------------------------------------------------ routes


@router.get("/config", response_model=PublishedOut, responses=ERRORS, dependencies=[BearerDoc])
async def get_published(context: Context, _auth: ApiViewer) -> PublishedOut:
    """The published configuration in force and its version number."""

    def read() -> tuple[int, RoutingConfig] | None:
        with context.db.read() as session:
            return config_store.published(session)

    found = await run_in_threadpool(read)
    if found is None:
        raise HTTPException(
            404,
            "no configuration is published yet (leads go round-robin to the default team's "
            "active reps): save a draft with PUT /api/v1/config/draft, then publish it",
        )
    return PublishedOut(version=found[0], config=found[1].dump())


@router.get(
    "/config/draft",
    response_model=DraftOut,
    responses={**ERRORS, 200: {"content": {YAML_TYPE: {"schema": {"type": "string"}}}}},
    dependencies=[BearerDoc],
)
async def get_draft(request: Request, context: Context, _auth: ApiViewer) -> Response:
    """The draft and its revision (also its ``ETag``); YAML with ``Accept:
    application/yaml``. Revision 0: no draft yet, the configuration in force is shown."""

    accept = request.headers.get("accept", "")
    as_yaml = any(t in accept for t in YAML_TYPES) and JSON_TYPE not in accept

    def read() -> tuple[int, str]:
        with context.db.read() as session:
            draft = config_store.get_draft(session)
            revision, config = current_draft(session, context)
        if as_yaml:
            return revision, dump_yaml(config)
        out = DraftOut(revision=revision, config=config.dump())
        if draft is not None:
            out.updated_by, out.updated_at = draft.updated_by, draft.updated_at
        return revision, out.model_dump_json()

    revision, text = await run_in_threadpool(read)
    media = YAML_TYPE if as_yaml else JSON_TYPE
    return Response(text, media_type=media, headers={"ETag": f'"{revision}"'})


@router.put(
    "/config/draft",
    response_model=DraftSaved,
    responses=ERRORS,
    dependencies=[BearerDoc],
    openapi_extra={"requestBody": body_doc(DraftIn, required=True)},
)
async def put_draft(request: Request, context: Context, caller: ApiAdmin) -> Response:
    """Save the draft: ``{"revision", "config"}``, or the YAML document with the revision
    it is based on in ``If-Match``. ``409`` when somebody saved it in between."""
    text, data = await read_document(request)
    document: str | dict[str, Any]
    if text is not None:
        revision, prefix, document = revision_of(request.headers.get("if-match")), "", text
    else:
        given: DraftIn = parsed(DraftIn, data)
        revision, prefix, document = given.revision, "config", given.config

    def save() -> DraftSaved:
        try:
            if isinstance(document, str):
                config = load_yaml(document, check=False)
            else:
                config = shaped(document)
        except ConfigError as err:
            raise HTTPException(422, errors(err.problems, prefix)) from None
        with context.db.session() as session:
            saved = config_store.save_draft(session, config, caller.actor, revision)
        found = problems(config)
        if isinstance(document, str):
            found = with_lines(document, found)
        return DraftSaved(revision=saved, problems=found)

    try:
        out = await run_in_threadpool(save)
    except config_store.StaleDraft as err:
        raise refused(409, "revision" if text is None else "If-Match", str(err)) from None
    headers = {"ETag": f'"{out.revision}"'}
    return Response(out.model_dump_json(), media_type=JSON_TYPE, headers=headers)


@router.post(
    "/config/validate",
    response_model=ValidationOut,
    responses=ERRORS,
    dependencies=[BearerDoc],
    openapi_extra={"requestBody": body_doc(ValidateIn, required=False)},
)
async def validate(request: Request, context: Context, _auth: ApiViewer) -> ValidationOut:
    """Every problem of a configuration (``{"config": ...}``, a YAML document, or by
    default the draft), each with its location and, for YAML, its line."""
    text, data = await read_document(request)
    given: ValidateIn = parsed(ValidateIn, {} if data is None else data)

    def check() -> list[Problem]:
        try:
            if text is not None:
                load_yaml(text, check=True)
            elif given.config is not None:
                validated(given.config)
            else:
                with context.db.read() as session:
                    config = current_draft(session, context)[1]
                found = problems(config)
                return with_lines(dump_yaml(config), found) if found else found
        except ConfigError as err:
            return err.problems
        return []

    found = await run_in_threadpool(check)
    return ValidationOut(valid=not found, problems=found)


@router.post(
    "/config/publish", response_model=VersionOut, responses=ERRORS, dependencies=[BearerDoc]
)
async def publish(context: Context, caller: ApiAdmin, body: PublishIn | None = None) -> VersionOut:
    """Publish the draft as the next version; in effect for the next lead. ``422`` with
    every problem (and its line in the draft's YAML) when the draft cannot be used."""

    note = body.note if body else ""
    try:
        number = await run_in_threadpool(publish_draft, context, caller.actor, note)
        return VersionOut(version=number)
    except ConfigError as err:
        raise HTTPException(422, errors(err.problems)) from None
    except IntegrityError:
        raise HTTPException(409, _CONCURRENT) from None


@router.post(
    "/config/rollback", response_model=VersionOut, responses=ERRORS, dependencies=[BearerDoc]
)
async def rollback(body: RollbackIn, context: Context, caller: ApiAdmin) -> VersionOut:
    """Publish an earlier version again, as a new version, and make it the draft."""

    try:
        number = await run_in_threadpool(rollback_to, context, body.version, caller.actor)
        return VersionOut(version=number)
    except config_store.UnknownVersion as err:
        raise refused(404, "version", str(err)) from None
    except ConfigError as err:
        message = f"version {body.version} does not pass today's checks"
        detail = [{"field": "version", "message": message}, *errors(err.problems)]
        raise HTTPException(422, detail) from None
    except IntegrityError:
        raise HTTPException(409, _CONCURRENT) from None


@router.get(
    "/config/versions",
    response_model=list[VersionInfoOut],
    responses=ERRORS,
    dependencies=[BearerDoc],
)
async def versions(
    context: Context,
    _auth: ApiViewer,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="the latest N")] = None,
) -> list[VersionInfoOut]:
    """Published versions, newest first: number, when, who, note, and the diff of its
    YAML against the version before."""

    def read() -> list[VersionInfoOut]:
        with context.db.read() as session:
            found = config_store.versions(session, limit)
        return [
            VersionInfoOut(
                version=v.version,
                published_at=v.published_at,
                published_by=v.published_by,
                note=v.note,
                diff=v.diff,
            )
            for v in found
        ]

    return await run_in_threadpool(read)
