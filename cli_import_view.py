"""What ``leadflow leads import`` and ``leadflow leads watch`` print (``cli_import``): the
detected columns, the validation's counts and first problems, and the progress of the
import, as a rich progress bar on a terminal or a plain line every ``PLAIN_EVERY_S``."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Task

    from domain.lead_import import Column, Validation

SHOWN_PROBLEMS = 20
PLAIN_EVERY_S = 10.0


class ProgressView:
    """A rich progress bar on a terminal (rows, rate, time left); a plain line every
    ``PLAIN_EVERY_S`` otherwise (a log, a pipe)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            """Rows a second, as rich measures them."""

            def render(self, task: Task) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:.1f}/s" if speed else "?/s", style="progress.data.speed")

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.progress.add_task("import", total=total)
        self.said = 0.0
        self.behind: str | None = None

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def queued(self, import_id: str, state: dict[str, Any]) -> None:
        """Say so when the import waits in line, and when its turn comes."""
        behind = state.get("queued_behind")
        if behind == self.behind:
            return
        if behind is not None:
            self.console.print(
                f"import {import_id} is queued behind import {behind}: imports run one at a "
                "time; it starts when the imports ahead of it have finished",
                highlight=False,
            )
        elif state["status"] == "running":
            self.console.print(f"import {import_id}: its turn came, importing", highlight=False)
        self.behind = behind

    def show(self, state: dict[str, Any]) -> None:
        self.progress.update(self.task, completed=state["imported"])
        now = time.monotonic()
        if not self.live and (now - self.said >= PLAIN_EVERY_S or state["done"]):
            self.said = now
            rate = state["rate_per_s"]
            left = state["seconds_left"]
            self.console.print(
                f"imported {state['imported']} of {state['accepted']} rows"
                + (f", {rate:.1f} rows/s" if rate else "")
                + (f", about {left:.0f} s left" if left else ""),
                highlight=False,
            )


# ---------------------------------------------------------------------------- output


def say_columns(columns: list[Column]) -> None:
    width = max((len(c.header) for c in columns), default=0) + 2
    say("columns:")
    for column in columns:
        header = f'"{column.header}"' if column.header else f"(column {column.index + 1})"
        target = column.target or "ignored"
        note = f"  ({column.note})" if column.note else ""
        say(f"  {header.ljust(width)} → {target}{note}")


def say_validation(validation: Validation) -> None:
    from domain.lead_import import describe, problem_lines

    say(
        f"{count(validation.rows, 'row')}: {count(len(validation.accepted), 'lead')} to "
        f"import, {count(len(validation.merged), 'duplicate')} merged into them, "
        f"{len(validation.rejected)} rejected"
    )
    problems = list(problem_lines(validation.rejected))
    for line, problem in problems[:SHOWN_PROBLEMS]:
        say(f"  {describe(line, problem)}")
    if len(problems) > SHOWN_PROBLEMS:
        say(f"  … and {len(problems) - SHOWN_PROBLEMS} more (--report FILE writes them all)")


def count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def say_error(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
