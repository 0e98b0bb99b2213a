"""An HTTP fake of the Slack Web API methods Leadflow uses, written from Slack's
documentation and driven by slack-sdk's clients over real HTTP.

Methods live at ``<url>/api/<method>`` (``WebClient(base_url=f"{url}/api/")``): form or
JSON bodies; the bot token only in ``Authorization: Bearer`` (a token in the body alone is
refused with ``not_authed``, to catch that mistake); HTTP 200 with ``{"ok": true, ...}``
or ``{"ok": false, "error": code}``; 429 with ``Retry-After`` when rate limited. The
methods themselves are in ``tests/fakes/slack_methods.py``, the Block Kit checks in
``tests/fakes/slack_blocks.py``.

``response_url`` s handed out in payloads (``tests/fakes/slack_payloads.py``) are
``<url>/response/<id>``: posts there are recorded, and applied to the message the
interaction came from (``replace_original``, ``delete_original``) or posted as a new
message (``response_type: in_channel``) or an ephemeral one (the default).

``FakeSlack`` is the control object (seeding, looking, faults); ``running_slack()`` serves
one on a free port; ``python -m tests.fakes.slack_api --port N`` serves one standalone and
prints its token and signing secret."""

from __future__ import annotations

import argparse
import copy
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from tests.fakes.server import serve
from tests.fakes.slack_methods import METHODS
from tests.fakes.slack_responses import respond
from tests.fakes.slack_socket import SocketMode
from tests.fakes.slack_workspace import (
    TRIGGER_TTL_S,
    Channel,
    Ephemeral,
    Message,
    ResponsePost,
    SlackError,
    View,
    Workspace,
)

FaultKind = Literal["429", "5xx", "invalid_auth", "channel_not_found"]


@dataclass
class Call:
    """One Web API call as received: its arguments (query, form or JSON merged), where
    the token came (``"header"``, ``"body"`` or None) and how it was answered."""

    method: str
    args: dict[str, Any]
    token_in: str | None
    status: int = 200
    error: str | None = None


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    method: str | None


@dataclass
class _Faults:
    pending: list[_Fault] = field(default_factory=list)

    def take(self, method: str) -> FaultKind | None:
        for fault in self.pending:
            if fault.remaining > 0 and fault.method in (None, method):
                fault.remaining -= 1
                return fault.kind
        return None


class FakeSlack:
    """One Slack workspace with Leadflow's bot installed: its API as an ASGI app
    (``app``) and the controls the tests use. ``trigger_ttl_s`` is how long a
    ``trigger_id`` stays valid (Slack: 3 seconds)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        signing_secret: str | None = None,
        trigger_ttl_s: float = TRIGGER_TTL_S,
    ) -> None:
        self.url = ""
        self.token = token or f"xoxb-1-{secrets.token_hex(12)}"
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.workspace = Workspace(trigger_ttl_s=trigger_ttl_s)
        self._faults = _Faults()
        self._calls: list[Call] = []
        self.app_token = f"xapp-1-{secrets.token_hex(12)}"
        self.socket = SocketMode(self.app_token)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/response/{url_id}", self._response_url, methods=["POST"]),
                WebSocketRoute("/socket/{connection}", self.socket.serve),
            ]
        )

    @property
    def api_url(self) -> str:
        """The ``base_url`` for slack-sdk's clients."""
        return f"{self.url}/api/"

    def web_client(self, **options: Any) -> WebClient:
        """A slack-sdk client for this fake, with slack-sdk's own retries off."""
        options.setdefault("retry_handlers", [])
        return WebClient(token=self.token, base_url=self.api_url, **options)

    # -- the Web API ---------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            args = await _read_args(request)
        except SlackError as err:
            return JSONResponse({"ok": False, "error": err.code})
        header = request.headers.get("authorization", "")
        token_in = "header" if header else "body" if "token" in args else None
        call = Call(method=method, args=args, token_in=token_in)
        if method == "apps.connections.open":  # Socket Mode, with the app-level token
            status, body = self.socket.open(header, self.url)
            call.status, call.error = status, body.get("error")
            with self.workspace.lock:
                self._calls.append(call)
            return JSONResponse(body, status)
        with self.workspace.lock:
            self._calls.append(call)
            status, body, headers = self._answer(method, args, header)
            call.status, call.error = status, body.get("error")
        return JSONResponse(body, status, headers=headers)

    def _answer(
        self, method: str, args: dict[str, Any], header: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._faults.take(method)
        if fault == "429":
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        if fault == "5xx":
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        if fault is not None:
            return 200, {"ok": False, "error": fault}, {}
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            # A token in the body alone is refused too: Leadflow must send the header.
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = METHODS.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        try:
            return 200, {"ok": True, **handler(self.workspace, args)}, {}
        except SlackError as err:
            return 200, {"ok": False, "error": err.code, **err.extra}, {}

    # -- response_url --------------------------------------------------------------------

    async def _response_url(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", 400)
        with self.workspace.lock:
            status, error = respond(self.workspace, request.path_params["url_id"], body)
        if error is not None:
            return PlainTextResponse(error, status)
        return JSONResponse({"ok": True})

    # -- seeding -------------------------------------------------------------------------

    def add_user(self, email: str, name: str, *, user_id: str | None = None) -> str:
        """A person in the workspace; their user id (``user_id`` to choose it, as the
        demo reps' ``U0DEMO…`` ids)."""
        with self.workspace.lock:
            return self.workspace.add_user(email, name, user_id)

    def add_channel(self, name: str, *, bot_member: bool = True) -> str:
        """A public channel (``name`` with or without ``#``); its ``C…`` id. Every person
        is in it; the bot only with ``bot_member``."""
        with self.workspace.lock:
            return self.workspace.add_channel(name, bot_member)

    def archive_channel(self, channel: str) -> None:
        with self.workspace.lock:
            self.workspace.channel(channel).archived = True

    def remove_bot(self, channel: str) -> None:
        """The bot leaves (or is removed from) ``channel``."""
        with self.workspace.lock:
            self.workspace.channel(channel).bot_member = False

    # -- interactivity handed out in payloads --------------------------------------------

    def issue_trigger(self, user: str, *, age_s: float = 0.0) -> str:
        """A ``trigger_id`` for an interaction of ``user``; ``age_s`` issues it that many
        seconds in the past (an expired one for tests)."""
        with self.workspace.lock:
            return self.workspace.issue_trigger(user, age_s)

    def issue_response_url(
        self, *, channel: str | None = None, user: str | None = None, message_ts: str | None = None
    ) -> str:
        """A ``response_url`` for an interaction of ``user`` in ``channel`` (on the
        message ``message_ts``, if any)."""
        with self.workspace.lock:
            url_id = self.workspace.issue_response_url(channel, user, message_ts)
        return f"{self.url}/response/{url_id}"

    # -- looking -------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """The Web API calls received (of ``method`` only, if given), refused ones too."""
        with self.workspace.lock:
            return [copy.deepcopy(c) for c in self._calls if method in (None, c.method)]

    def channel_id(self, ref: str) -> str:
        """The id of a channel given by id, name or ``#name``, or of the bot's DM with a
        user given by user id."""
        with self.workspace.lock:
            found = self._find(ref)
            if found is None:
                raise KeyError(ref)
            return found.id

    def open_dm(self, user_id: str) -> str:
        """The ``D…`` id of the bot's DM with ``user_id``, opening it if need be."""
        with self.workspace.lock:
            return self.workspace.dm_with(user_id).id

    def dm_channel(self, user_id: str) -> str | None:
        """The ``D…`` id of the bot's DM with ``user_id``, once one was opened."""
        with self.workspace.lock:
            found = self.workspace.find_dm(user_id)
            return None if found is None else found.id

    def messages(self, channel: str) -> list[Message]:
        """The messages in ``channel`` (id, name, or a user id for their DM with the bot)
        as they stand now, oldest first; thread replies included (``thread_ts``)."""
        with self.workspace.lock:
            found = self._find(channel)
            return [] if found is None else copy.deepcopy(self.workspace.messages[found.id])

    def _find(self, ref: str) -> Channel | None:
        """The channel ``ref`` names (id, name, ``#name``, or a user id for their DM),
        without opening a DM as posting to a user id does."""
        ws = self.workspace
        if ref in ws.users:
            return ws.find_dm(ref)
        try:
            return ws.channel(ref)
        except SlackError:
            return None

    def ephemerals(self, channel: str | None = None) -> list[Ephemeral]:
        with self.workspace.lock:
            found = self.workspace.ephemerals
            return [copy.deepcopy(e) for e in found if channel in (None, e.channel)]

    def response_posts(self) -> list[ResponsePost]:
        """What was posted to the ``response_url`` s, in order."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.response_posts)

    def views_opened(self) -> list[View]:
        """The modals opened with ``views.open`` (as they stand now), in order."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.opened)

    def view(self, view_id: str) -> View | None:
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.views.get(view_id))

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for ``user_id``."""
        with self.workspace.lock:
            found = self.workspace.home.get(user_id)
            return None if found is None else copy.deepcopy(found.view)

    # -- faults --------------------------------------------------------------------------

    def fail(self, kind: FaultKind, *, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` Web API calls (of ``method`` only, if given) this
        way: ``429`` (``ratelimited``, ``Retry-After: 1``), ``5xx`` (503), or HTTP 200
        with the error ``invalid_auth`` / ``channel_not_found``. Faults add up: each
        call takes the first pending one that applies."""
        with self.workspace.lock:
            self._faults.pending.append(_Fault(kind=kind, remaining=times, method=method))

    def heal(self) -> None:
        """No more injected faults."""
        with self.workspace.lock:
            self._faults.pending.clear()


async def _read_args(request: Request) -> dict[str, Any]:
    """The call's arguments: the query string, then a JSON object or form fields."""
    args: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        raw = await request.body()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(data, dict):
            raise SlackError("json_not_object")
        args.update(data)
    elif ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


@contextmanager
def running_slack(**options: Any) -> Iterator[FakeSlack]:
    """A ``FakeSlack`` served on a free localhost port for the block."""
    fake = FakeSlack(**options)
    with serve(fake.app) as url:
        fake.url = url
        yield fake


def main(argv: list[str] | None = None) -> None:
    from store.reps import DEMO_REPS

    parser = argparse.ArgumentParser(description="Serve a fake Slack Web API")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--wins-channel", default="wins")
    args = parser.parse_args(argv)
    fake = FakeSlack()
    for name, email, slack_id in DEMO_REPS:
        fake.add_user(email, name, user_id=slack_id)
    fake.add_channel(args.wins_channel)
    with serve(fake.app, port=args.port) as url:
        fake.url = url
        sys.stdout.write(
            f"fake Slack at {url}\nLEADFLOW_SLACK_API_URL={fake.api_url}\n"
            f"LEADFLOW_SLACK_BOT_TOKEN={fake.token}\n"
            f"LEADFLOW_SLACK_SIGNING_SECRET={fake.signing_secret}\n"
        )
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
