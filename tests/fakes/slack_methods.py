"""The Web API methods of the fake Slack, one function each, written from Slack's method
reference: each takes the workspace and the call's arguments (form values are strings,
JSON values anything) and returns the fields of an ``ok`` answer, or raises
``SlackError`` with the method's documented error code. Called with the workspace's lock
held."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from tests.fakes.slack_blocks import message_problems, view_problems
from tests.fakes.slack_workspace import Channel, Ephemeral, Message, SlackError, View, Workspace

Args = dict[str, Any]
TEXT_LIMIT = 40_000  # chat.postMessage truncates past 40,000; we refuse (msg_too_long)


# ------------------------------------------------------------------------ arguments


def _str(args: Args, key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _flag(args: Args, key: str) -> bool:
    return args.get(key) in (True, 1, "1", "true", "True")


def _json(args: Args, key: str, bad: str) -> Any:
    """A JSON argument: an object in a JSON body, a JSON-encoded string in a form."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(bad) from None
    return value


def _invalid(code: str, problems: list[str]) -> SlackError:
    return SlackError(
        code,
        errors=problems,
        response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
    )


def _content(args: Args, *, updating: bool = False) -> tuple[str | None, list[Any] | None]:
    """The ``text`` and ``blocks`` of a message call, checked as Slack checks them."""
    text = args.get("text")
    blocks = _json(args, "blocks", "invalid_blocks_format")
    attachments = args.get("attachments")
    if updating:  # an update needs something to change
        empty = text is None and blocks is None and attachments is None
    else:  # a new message needs something to show
        empty = not text and not blocks and not attachments
    if empty:
        raise SlackError("no_text")
    if text is not None and len(str(text)) > TEXT_LIMIT:
        raise SlackError("msg_too_long")
    if blocks is not None:
        problems = message_problems(blocks)
        if problems:
            raise _invalid("invalid_blocks", problems)
    return (None if text is None else str(text)), blocks


def _postable(channel: Channel) -> None:
    if channel.archived:
        raise SlackError("is_archived")
    if not channel.bot_member:
        raise SlackError("not_in_channel")


# ------------------------------------------------------------------------ the methods


def auth_test(ws: Workspace, args: Args) -> Args:
    return {
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": "Leadflow Fake",
        "user": "leadflow",
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def conversations_open(ws: Workspace, args: Args) -> Args:
    """Opens (or finds) the bot's direct message with one person: the same ``D…`` id
    every time."""
    channel_id = _str(args, "channel")
    if channel_id is not None:
        channel = ws.channels.get(channel_id)
        if channel is None or channel.im_user is None:
            raise SlackError("channel_not_found")
        return {"channel": channel.json() if _flag(args, "return_im") else {"id": channel.id}}
    raw = args.get("users")
    users = raw if isinstance(raw, list) else str(raw or "").split(",")
    users = [u.strip() for u in users if u and u.strip()]
    if not users:
        raise SlackError("users_list_not_supplied")
    for user in users:
        if user not in ws.users:
            raise SlackError("user_not_found")
    if len(users) > 1:
        # A multi-person conversation: Leadflow never opens one, so the fake does not.
        raise SlackError("not_implemented_in_fake")
    existing = ws.find_dm(users[0])
    channel = existing or ws.dm_with(users[0])
    answer: Args = {"channel": channel.json() if _flag(args, "return_im") else {"id": channel.id}}
    if existing is not None:
        answer.update(no_op=True, already_open=True)
    return answer


def conversations_info(ws: Workspace, args: Args) -> Args:
    channel = ws.channels.get(_str(args, "channel") or "")
    if channel is None:
        raise SlackError("channel_not_found")
    return {"channel": channel.json()}


def chat_post_message(ws: Workspace, args: Args) -> Args:
    """Posts to a channel (id or name, which the bot must be in) or to a person's DM
    with the bot (their user id, or the ``D…`` id); ``thread_ts`` makes it a reply."""
    ref = _str(args, "channel")
    if ref is None:
        raise SlackError("channel_not_found")
    channel = ws.channel(ref, by_user=True)
    _postable(channel)
    text, blocks = _content(args)
    message = Message(
        channel=channel.id,
        ts=ws.new_ts(),
        text=text or "",
        blocks=blocks or [],
        user=ws.bot_user_id,
        thread_ts=_str(args, "thread_ts"),
    )
    ws.messages[channel.id].append(message)
    return {"channel": channel.id, "ts": message.ts, "message": message.json(ws.bot_id)}


def chat_update(ws: Workspace, args: Args) -> Args:
    """Changes a message: ``channel`` must be the conversation's id (``D…`` for a
    direct message, never the person's user id). Without ``blocks`` the message keeps
    its blocks; without ``text`` its text."""
    channel = ws.channels.get(_str(args, "channel") or "")
    if channel is None:
        raise SlackError("channel_not_found")
    message = ws.message(channel.id, _str(args, "ts") or "")
    if message is None:
        raise SlackError("message_not_found")
    if channel.archived:
        raise SlackError("is_archived")
    text, blocks = _content(args, updating=True)
    if text is not None:
        message.text = text
    if blocks is not None:
        message.blocks = blocks
    message.edits += 1
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": message.json(ws.bot_id),
    }


def chat_post_ephemeral(ws: Workspace, args: Args) -> Args:
    """A message only ``user`` sees, in a conversation the bot is in."""
    channel = ws.channel(_str(args, "channel") or "")
    user = _str(args, "user")
    if user is None or user not in ws.users:
        raise SlackError("user_not_found")
    _postable(channel)
    if channel.im_user is not None and channel.im_user != user:
        raise SlackError("user_not_in_channel")
    text, blocks = _content(args)
    ephemeral = Ephemeral(
        channel=channel.id,
        user=user,
        text=text or "",
        blocks=blocks or [],
        message_ts=ws.new_ts(),
        thread_ts=_str(args, "thread_ts"),
    )
    ws.ephemerals.append(ephemeral)
    return {"message_ts": ephemeral.message_ts}


def _checked_view(args: Args, *, home: bool) -> dict[str, Any]:
    view = _json(args, "view", "invalid_arguments")
    problems = view_problems(view, home=home)
    if problems:
        raise _invalid("invalid_blocks", problems)
    assert isinstance(view, dict)
    return view


def _new_hash() -> str:
    return f"{secrets.randbelow(10**10)}.{secrets.token_hex(4)}"


def views_open(ws: Workspace, args: Args) -> Args:
    """Opens a modal for the person whose interaction issued ``trigger_id`` (valid
    once, within 3 seconds)."""
    view = _checked_view(args, home=False)
    trigger_id = _str(args, "trigger_id") or _str(args, "interactivity_pointer")
    if trigger_id is None:
        raise SlackError("invalid_arguments")
    trigger = ws.take_trigger(trigger_id)
    opened = View(
        id=ws.new_id("V"), user=trigger.user, view=view, hash=_new_hash(), opened_with=trigger_id
    )
    ws.views[opened.id] = opened
    ws.opened.append(opened)
    return {"view": opened.json(ws.team_id)}


def views_update(ws: Workspace, args: Args) -> Args:
    """Replaces a view found by ``view_id`` or ``external_id``; a ``hash`` other than
    the view's current one is refused (``hash_conflict``)."""
    view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
    if view_id is not None:
        found = ws.views.get(view_id)
    elif external_id is not None:
        found = next(
            (v for v in ws.views.values() if v.view.get("external_id") == external_id), None
        )
    else:
        raise SlackError("invalid_arguments")
    if found is None:
        raise SlackError("not_found")
    given_hash = _str(args, "hash")
    if given_hash is not None and given_hash != found.hash:
        raise SlackError("hash_conflict")
    found.view = _checked_view(args, home=found.view.get("type") == "home")
    found.hash = _new_hash()
    return {"view": found.json(ws.team_id)}


def views_publish(ws: Workspace, args: Args) -> Args:
    """Publishes ``user_id`` 's App Home tab (one per person, replaced on each call)."""
    user = _str(args, "user_id")
    if user is None or user not in ws.users:
        raise SlackError("user_not_found")
    view = _checked_view(args, home=True)
    existing = ws.home.get(user)
    given_hash = _str(args, "hash")
    if existing is not None and given_hash is not None and given_hash != existing.hash:
        raise SlackError("hash_conflict")
    if existing is None:
        existing = View(id=ws.new_id("V"), user=user, view=view, hash=_new_hash())
        ws.home[user] = existing
        ws.views[existing.id] = existing
    else:
        existing.view, existing.hash = view, _new_hash()
    return {"view": existing.json(ws.team_id)}


def users_lookup_by_email(ws: Workspace, args: Args) -> Args:
    user = ws.user_by_email(_str(args, "email") or "")
    if user is None:
        raise SlackError("users_not_found")
    return {"user": user.json(ws.team_id)}


def users_info(ws: Workspace, args: Args) -> Args:
    user_id = _str(args, "user") or ""
    if user_id == ws.bot_user_id:
        bot = {"id": user_id, "team_id": ws.team_id, "name": "leadflow", "is_bot": True}
        return {"user": bot}
    user = ws.users.get(user_id)
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.json(ws.team_id)}


METHODS: dict[str, Callable[[Workspace, Args], Args]] = {
    "auth.test": auth_test,
    "conversations.open": conversations_open,
    "conversations.info": conversations_info,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "users.lookupByEmail": users_lookup_by_email,
    "users.info": users_info,
}
