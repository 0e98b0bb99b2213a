"""The process supervisor of ``leadflow dev``: it starts the children (the Temporal dev
server, the worker, the web app), restarts one that exits with exponential backoff, gives up
on a child that keeps crashing, and stops them all in reverse order of start."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

log = logging.getLogger("leadflow.supervisor")

STOP_GRACE_S = 10.0
MAX_BACKOFF_S = 10.0
# More than ``max_restarts`` exits of one child within this window and the supervisor gives up.
RESTART_WINDOW_S = 300.0
POLL_S = 0.2

Popen = subprocess.Popen[bytes]


def _die_with_parent() -> None:
    """Children of ``leadflow dev`` get SIGTERM if it dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args: Sequence[str], env: Mapping[str, str], log_file: Path | None = None) -> Popen:
    """Start ``args`` in its own session (Ctrl-C reaches only the supervisor, which stops
    children in order), its output appended to ``log_file`` or, without one, to ours."""
    with open(log_file, "ab") if log_file else contextlib.nullcontext() as out:
        return subprocess.Popen(
            list(args),
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop(proc: Popen, name: str) -> None:
    """SIGTERM, then SIGKILL after ``STOP_GRACE_S``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s; killing it", name, STOP_GRACE_S)
        proc.kill()
        proc.wait()


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"


@dataclass
class Child:
    name: str
    args: list[str]
    log_file: Path | None
    # Blocks until the child is ready; raises SystemExit with a message when it is not.
    ready: Callable[[Popen], None] | None
    proc: Popen
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # set while a restart is pending

    @property
    def log_hint(self) -> str:
        if self.log_file:
            return str(self.log_file)
        return f"the output of leadflow dev above (lines of process {self.name!r})"


class Supervisor:
    """Owns the child processes of ``leadflow dev``."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        max_restarts: int,
        backoff_s: float,
        max_backoff_s: float = MAX_BACKOFF_S,
        window_s: float = RESTART_WINDOW_S,
    ) -> None:
        self.env = dict(env)
        self.max_restarts = max_restarts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.window_s = window_s
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_file: Path | None = None,
        ready: Callable[[Popen], None] | None = None,
    ) -> None:
        """Start a child and wait until it is ready; a child that fails to start at all
        raises (SystemExit with a message), which stops the stack."""
        child = Child(name, list(args), log_file, ready, spawn(args, self.env, log_file))
        self.children.append(child)
        if ready:
            ready(child.proc)

    def watch(self) -> NoReturn:
        """Restart children that exit, until one keeps crashing: then raise SystemExit
        naming it and its log. Ctrl-C / SIGTERM arrive as the caller's exceptions."""
        while True:
            for child in self.children:
                self._check(child)
            time.sleep(POLL_S)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            stop(child.proc, child.name)

    def _check(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                self._restart(child)
            return
        code = child.proc.poll()
        if code is None:
            return
        child.crashes.append(now)
        while now - child.crashes[0] > self.window_s:
            child.crashes.popleft()
        crashes = len(child.crashes)
        if crashes > self.max_restarts:
            raise SystemExit(
                f"leadflow: {child.name} kept crashing ({crashes} exits within "
                f"{self.window_s:.0f} s, the last with {describe_exit(code)}); gave up and "
                f"stopped everything. See its log: {child.log_hint}"
            )
        delay = min(self.backoff_s * 2 ** (crashes - 1), self.max_backoff_s)
        log.warning(
            "%s exited with %s; restarting it in %.1f s (restart %d of at most %d within %.0f s)",
            child.name,
            describe_exit(code),
            delay,
            crashes,
            self.max_restarts,
            self.window_s,
        )
        child.restart_at = now + delay

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        child.proc = spawn(child.args, self.env, child.log_file)
        log.info("%s restarted (pid %d)", child.name, child.proc.pid)
        if child.ready:
            try:
                child.ready(child.proc)
            except SystemExit as err:
                # Still running: it may come up later. Exited: the next check counts it.
                log.warning("%s", err.code)
