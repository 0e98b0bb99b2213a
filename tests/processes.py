"""Helpers for tests that run Leadflow as real OS processes: spawn ``python -m cli ...``
with a clean environment and a log file, wait for HTTP health, kill whole process trees,
find free ports. Every process started through ``Processes`` is killed at teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import psutil

from cli import port_free

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "cli"]
STARTUP_S = 40.0
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (held open together so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_free_now(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``port`` now (as ``leadflow dev`` checks it)."""
    return port_free(host, port)


@contextlib.contextmanager
def occupied_port() -> Iterator[int]:
    """A port some other program listens on for the duration of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def leadflow_env(**settings: object) -> dict[str, str]:
    """The test runner's environment without any ``LEADFLOW_*`` variable, plus the given
    settings (``web_port=8001`` becomes ``LEADFLOW_WEB_PORT=8001``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env["LEADFLOW_LOG_JSON"] = "false"
    # A killed worker's leads resume on the next one after 1 s instead of Temporal's 5 s.
    env["LEADFLOW_WORKER_STICKY_TIMEOUT_S"] = "1"
    for key, value in settings.items():
        env[f"LEADFLOW_{key.upper()}"] = str(value)
    return env


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        return f"--- {self.name} (pid {self.pid}) log {self.log} ---\n{tail(self.log, lines)}"

    def wait(self, timeout: float) -> int:
        """The exit code; fails (naming the log) when the process runs past ``timeout``."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout:.0f} s\n{self.tail()}"
            ) from None

    def children(self) -> list[psutil.Process]:
        """Every descendant, found while the parent is still alive."""
        try:
            found: list[psutil.Process] = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return found


@dataclass
class Processes:
    """Starts processes with logs under ``log_dir`` and kills every one of them (and its
    descendants) at ``close``."""

    log_dir: Path
    started: list[Proc] = field(default_factory=list)
    known: dict[int, psutil.Process] = field(default_factory=dict)

    def spawn(
        self, name: str, args: Iterable[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            out.write(f"=== start {' '.join(args)}\n".encode())
            out.flush()
            popen = subprocess.Popen(
                list(args),
                env=dict(env),
                cwd=cwd or self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.started.append(proc)
        self.remember(proc)
        return proc

    def cli(self, name: str, command: str, env: Mapping[str, str]) -> Proc:
        return self.spawn(name, [*CLI, command], env)

    def remember(self, proc: Proc) -> list[psutil.Process]:
        """Note ``proc``'s descendants now, so ``close`` can reach them after it died."""
        found = proc.children()
        with contextlib.suppress(psutil.NoSuchProcess):
            found.append(psutil.Process(proc.pid))
        for p in found:
            self.known.setdefault(p.pid, p)
        return found

    def tails(self, lines: int = 40) -> str:
        return "\n".join(p.tail(lines) for p in self.started)

    def close(self) -> None:
        for proc in self.started:
            self.remember(proc)
        kill_all(self.known.values())
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie waiting to be reaped (that counts as gone)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for every process to end; return those still running."""
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def kill_all(procs: Iterable[psutil.Process], sig: int = signal.SIGKILL) -> list[psutil.Process]:
    """Send ``sig`` to each (already-gone ones are skipped); return those still running
    5 s later. ``psutil.Process`` objects refuse to signal a recycled pid."""
    procs = list(procs)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)
    return wait_gone(procs, 5)


def kill_tree(proc: Proc, sig: int = signal.SIGKILL) -> list[psutil.Process]:
    """Signal ``proc`` and all its descendants at once (descendants collected before the
    parent is signalled); return the processes that were signalled."""
    tree = proc.children()
    with contextlib.suppress(psutil.NoSuchProcess):
        tree.insert(0, psutil.Process(proc.pid))
    alive = kill_all(tree, sig)
    proc.popen.poll()  # reap
    assert not alive, f"still alive after signal {sig}: {alive}"
    return tree


def poll(
    check: Callable[[], T | None],
    within: float,
    what: str,
    interval: float = 0.05,
    watch: Iterable[Proc] = (),
    details: Callable[[], str] | None = None,
) -> T:
    """Call ``check`` until it returns something other than None/False; fail after
    ``within`` seconds, or at once when a watched process exits, with logs attached."""
    watch = list(watch)
    deadline = time.monotonic() + within
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except Exception as err:  # a service still starting, a table not migrated yet
            last_error = err
            result = None
        if result is not None and result is not False:
            return result
        dead = [p for p in watch if not p.alive()]
        if dead or time.monotonic() > deadline:
            reason = (
                ", ".join(f"{p.name} exited with code {p.popen.returncode}" for p in dead)
                or f"not within {within:.0f} s"
            )
            extra = details() if details else ""
            logs = "\n".join(p.tail() for p in watch)
            raise AssertionError(f"{what}: {reason} (last error: {last_error!r})\n{extra}\n{logs}")
        time.sleep(interval)


def wait_http_ok(url: str, within: float, watch: Iterable[Proc] = ()) -> httpx.Response:
    """GET ``url`` until it answers 200."""

    def check() -> httpx.Response | None:
        response = httpx.get(url, timeout=3)
        return response if response.status_code == 200 else None

    return poll(check, within, f"GET {url} did not answer 200", interval=0.1, watch=watch)


@dataclass
class DevStack:
    """A ``leadflow dev`` stack on free ports with its own data folder."""

    procs: Processes
    data_dir: Path
    env: dict[str, str]
    web_port: int
    temporal_port: int

    @classmethod
    def create(cls, procs: Processes, data_dir: Path, **settings: object) -> DevStack:
        web_port, temporal_port, ui_port = free_ports(3)
        env = leadflow_env(
            data_dir=data_dir,
            web_port=web_port,
            temporal_port=temporal_port,
            temporal_ui_port=ui_port,
            **settings,
        )
        return cls(procs, data_dir, env, web_port, temporal_port)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'leadflow.db'}"

    def start(self, name: str = "dev") -> Proc:
        dev = self.procs.cli(name, "dev", self.env)
        wait_http_ok(f"{self.base}/healthz", STARTUP_S, watch=[dev])
        self.procs.remember(dev)
        return dev

    def child(self, dev: Proc, marker: str) -> psutil.Process:
        for p in dev.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if marker in p.cmdline():
                    return p
        raise AssertionError(f"no {marker!r} child of leadflow dev\n{dev.tail()}")

    def token(self) -> str:
        return (self.data_dir / "api_token").read_text().strip()
