"""The fake Slack's Block Kit checks: a small part of what Slack validates, enough to catch
the mistakes a message builder makes (an unknown block type, a text over its limit, a
button whose label is mrkdwn, two buttons with one ``action_id``).

Limits, from Slack's Block Kit reference: at most 50 blocks in a message and 100 in a
modal or Home tab; a ``block_id`` of at most 255 characters, unique in its message; a
section's text at most 3,000 characters and at most 10 fields of 2,000; a header's
``plain_text`` at most 150; a context at most 10 elements; an actions block at most 25
elements; a button's label ``plain_text`` of at most 75 characters, its ``action_id`` at
most 255, ``value`` 2,000 and ``url`` 3,000, unique ``action_id`` s in a message; a modal's
``title``, ``submit`` and ``close`` ``plain_text`` of at most 24 characters,
``callback_id`` 255 and ``private_metadata`` 3,000.

Each problem is a string as Slack words it: what is wrong and a JSON pointer to where
(``must be less than 76 characters [json-pointer:/blocks/2/elements/0/text/text]``)."""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS = 50
SURFACE_BLOCKS = 100
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
INTERACTIVE = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "conversations_select",
        "channels_select",
        "external_select",
    }
)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.action_ids: set[str] = set()
        self.block_ids: set[str] = set()

    def fail(self, what: str, where: str) -> None:
        self.problems.append(f"{what} [json-pointer:{where}]")

    def length(self, value: Any, limit: int, where: str, *, required: bool = True) -> None:
        if value is None:
            if required:
                self.fail("missing required field", where)
            return
        if not isinstance(value, str):
            self.fail("must be a string", where)
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", where)
        elif required and not value:
            self.fail("must be more than 0 characters", where)

    def text(self, obj: Any, limit: int, where: str, *, plain: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail("must provide an object", where)
            return
        kind = obj.get("type")
        allowed = {"plain_text"} if plain else TEXT_TYPES
        if kind not in allowed:
            self.fail(f"must be one of {sorted(allowed)}", f"{where}/type")
        self.length(obj.get("text"), limit, f"{where}/text")

    def blocks(self, blocks: Any, limit: int, where: str) -> None:
        if not isinstance(blocks, list):
            self.fail("must provide an array", where)
            return
        if len(blocks) > limit:
            self.fail(f"no more than {limit} items allowed", where)
        for index, block in enumerate(blocks):
            self.block(block, f"{where}/{index}")

    def block(self, block: Any, where: str) -> None:
        if not isinstance(block, dict):
            self.fail("must provide an object", where)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.fail("unknown block type" if kind else "missing required field", f"{where}/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.length(block_id, 255, f"{where}/block_id")
            if block_id in self.block_ids:
                self.fail("non-unique block_id", f"{where}/block_id")
            self.block_ids.add(block_id)
        getattr(self, f"_{kind}", lambda _b, _w: None)(block, where)

    # -- one method per block type that has limits worth checking ---------------------

    def _section(self, block: dict[str, Any], where: str) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.fail("must provide either text or fields", where)
        if text is not None:
            self.text(text, 3000, f"{where}/text")
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                self.fail("no more than 10 items allowed", f"{where}/fields")
            else:
                for index, field in enumerate(fields):
                    self.text(field, 2000, f"{where}/fields/{index}")
        if "accessory" in block:
            self.element(block["accessory"], f"{where}/accessory")

    def _header(self, block: dict[str, Any], where: str) -> None:
        self.text(block.get("text"), 150, f"{where}/text", plain=True)

    def _context(self, block: dict[str, Any], where: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            self.fail("must provide between 1 and 10 items", f"{where}/elements")
            return
        for index, element in enumerate(elements):
            at = f"{where}/elements/{index}"
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            self.text(element, 3000, at)

    def _actions(self, block: dict[str, Any], where: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            self.fail("must provide between 1 and 25 items", f"{where}/elements")
            return
        for index, element in enumerate(elements):
            self.element(element, f"{where}/elements/{index}")

    def _input(self, block: dict[str, Any], where: str) -> None:
        self.text(block.get("label"), 2000, f"{where}/label", plain=True)
        if "element" not in block:
            self.fail("missing required field", f"{where}/element")
        else:
            self.element(block["element"], f"{where}/element")

    def _image(self, block: dict[str, Any], where: str) -> None:
        if "image_url" not in block and "slack_file" not in block:
            self.fail("must provide either image_url or slack_file", where)
        self.length(block.get("alt_text"), 2000, f"{where}/alt_text")

    # -- elements ------------------------------------------------------------------------

    def element(self, element: Any, where: str) -> None:
        if not isinstance(element, dict):
            self.fail("must provide an object", where)
            return
        kind = element.get("type")
        if kind == "image":
            return
        if kind not in INTERACTIVE:
            self.fail("unknown element type", f"{where}/type")
            return
        action_id = element.get("action_id")
        if action_id is not None:
            self.length(action_id, 255, f"{where}/action_id")
            if action_id in self.action_ids:
                self.fail("non-unique action_id", f"{where}/action_id")
            self.action_ids.add(action_id)
        if kind == "button":
            self.text(element.get("text"), 75, f"{where}/text", plain=True)
            self.length(element.get("value"), 2000, f"{where}/value", required=False)
            self.length(element.get("url"), 3000, f"{where}/url", required=False)
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.fail("must be one of ['danger', 'primary']", f"{where}/style")


def message_problems(blocks: Any) -> list[str]:
    """What is wrong with the ``blocks`` of a message (empty when nothing)."""
    checker = _Checker()
    checker.blocks(blocks, MESSAGE_BLOCKS, "/blocks")
    return checker.problems


def view_problems(view: Any, *, home: bool = False) -> list[str]:
    """What is wrong with a modal (or, with ``home``, a Home tab) view."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("must provide an object", "/view")
        return checker.problems
    expected = "home" if home else "modal"
    if view.get("type") != expected:
        checker.fail(f"must be {expected!r}", "/view/type")
    if not home:
        checker.text(view.get("title"), 24, "/view/title", plain=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text(view[key], 24, f"/view/{key}", plain=True)
    checker.length(view.get("callback_id"), 255, "/view/callback_id", required=False)
    checker.length(view.get("private_metadata"), 3000, "/view/private_metadata", required=False)
    checker.blocks(view.get("blocks"), SURFACE_BLOCKS, "/view/blocks")
    return checker.problems
