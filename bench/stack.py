"""The embedded stack of the speed-to-lead bench: ``python -m cli dev`` on free loopback
ports in a temporary data folder, and the CPU time of each of its processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from settings import Settings

STACK_START_TIMEOUT_S = 60.0
STACK_STOP_TIMEOUT_S = 40.0


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def free_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken and port + 1 not in taken:
            taken.add(port)
            return port


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine so far (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return []
    return [arg for arg in raw.split("\0") if arg]


class Stack:
    """``python -m cli dev`` on free ports in a temporary data folder."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.data_dir = workdir / "data"
        taken: set[int] = set()
        self.web_port = free_port(taken)
        self.temporal_port = free_port(taken)
        self.temporal_ui_port = free_port(taken)
        self.log_file = workdir / "stack.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.components: dict[str, int] = {}
        self.token = ""
        self.lead_id_secret = b""
        self.settings = Settings(
            _env_file=None,
            data_dir=self.data_dir,
            temporal_port=self.temporal_port,
            temporal_ui_port=self.temporal_ui_port,
            web_port=self.web_port,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def app_db(self) -> Path:
        return self.data_dir / "leadflow.db"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env.update(
            {
                "LEADFLOW_DATA_DIR": str(self.data_dir),
                "LEADFLOW_WEB_PORT": str(self.web_port),
                "LEADFLOW_TEMPORAL_PORT": str(self.temporal_port),
                "LEADFLOW_TEMPORAL_UI_PORT": str(self.temporal_ui_port),
                "LEADFLOW_LOG_JSON": "true",
                **self.extra_env,
            }
        )
        with open(self.log_file, "ab") as out:
            # cwd is the temporary folder, so no .env file of the repository applies.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "dev"],
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, http: httpx.AsyncClient) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STACK_START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"leadflow dev exited with code {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get("/healthz", timeout=2.0)
                if response.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not healthy within {STACK_START_TIMEOUT_S} s")
            await asyncio.sleep(0.2)
        self.token = (self.data_dir / "api_token").read_text().strip()
        self.lead_id_secret = (self.data_dir / "lead_id_secret").read_text().strip().encode()
        for pid in children_of(self.proc.pid):
            args = " ".join(cmdline(pid))
            if "temporal" in args and "start-dev" in args:
                self.components["temporal"] = pid
            elif args.endswith("cli worker"):
                self.components["worker"] = pid
            elif args.endswith("cli web"):
                self.components["web"] = pid
        self.components["dev"] = self.proc.pid

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) for name, pid in self.components.items()}
        out["bench"] = time.process_time()
        out["machine"], out["steal"] = machine_cpu()
        return out

    def stop(self) -> None:
        """SIGTERM (leadflow dev stops its children in order), then kill what is left."""
        if self.proc is None:
            return
        spawned = set(children_of(self.proc.pid)) | set(self.components.values())
        spawned.discard(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STACK_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log("leadflow dev did not stop in time; killing it")
                self.proc.kill()
                self.proc.wait()
        for pid in spawned:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if Path(f"/proc/{pid}").exists():
                    os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
