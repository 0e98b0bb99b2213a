"""``leadflow config`` as real processes (``python -m cli config ...``) on a SQLite
database: export → import → export gives the same bytes, validate names FILE:LINE, and
publish, rollback and versions work on numbered versions with the actor recorded. Also
``leadflow dev``'s start-up step that publishes the demo configuration."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import db_upgrade
from cli_config import DEMO_CONFIG
from domain.config_yaml import load_yaml
from store import config as config_store
from store import reps as rep_store
from store.db import Database
from store.migrate import upgrade
from tests.conftest import make_settings
from tests.processes import CLI, leadflow_env

RUN_S = 60.0


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class ConfigCli:
    env: Mapping[str, str]
    cwd: Path

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        done = subprocess.run(
            [*CLI, "config", *args],
            env=dict(self.env),
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=RUN_S,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def database(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def leadflow_config(database: Database, tmp_path: Path) -> ConfigCli:
    env = leadflow_env(data_dir=tmp_path / "data", database_url=database.url)
    return ConfigCli(env, tmp_path)


def test_cli_export_import_export_is_byte_identical(
    leadflow_config: ConfigCli, tmp_path: Path
) -> None:
    imported = leadflow_config("import", str(DEMO_CONFIG), "--publish", "--note", "demo")
    assert (imported.code, imported.err) == (0, ""), imported
    assert imported.out == f"imported {DEMO_CONFIG} and published it as version 1\n"

    first = leadflow_config("export")
    assert first.code == 0, first
    assert load_yaml(first.out) == load_yaml(DEMO_CONFIG.read_text())
    exported = tmp_path / "exported.yaml"
    exported.write_text(first.out)

    again = leadflow_config("import", str(exported), "--publish")
    assert again.code == 0, again
    second = leadflow_config("export")
    assert second.out == first.out
    # Through standard input as well.
    piped = leadflow_config("import", "-", stdin=second.out)
    assert piped.code == 0, piped
    assert leadflow_config("export", "--draft").out == first.out


def test_cli_validate_names_file_and_line_of_each_problem(
    leadflow_config: ConfigCli, tmp_path: Path
) -> None:
    good = leadflow_config("validate", str(DEMO_CONFIG))
    assert (good.code, good.out) == (0, "valid\n")

    text = DEMO_CONFIG.read_text().replace("assign: {pool: EMEA AE}", "assign: {pool: EMEA SDR}")
    text = text.replace(
        "    slack_user_id: U0DEMOSAM\n", "    slack_user_id: U0DEMOSAM\n    team: x\n"
    )
    lines = text.splitlines()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = leadflow_config("validate", str(bad))
    assert result.code == 1
    team_line = lines.index("    team: x") + 1
    assert result.out == f"{bad}:{team_line}: reps[2].team: unknown field\n"

    text = text.replace("    team: x\n", "")
    bad.write_text(text)
    pool_line = text.splitlines().index("    assign: {pool: EMEA SDR}") + 1
    result = leadflow_config("validate", str(bad))
    assert (result.code, result.out) == (
        1,
        f"{bad}:{pool_line}: rules[1].assign.pool: unknown pool 'EMEA SDR'\n",
    )

    bad.write_text("reps:\n  - email: a@example.com\n    name: [A\nfallback: {pool: x}\n")
    result = leadflow_config("validate", str(bad))
    assert result.code == 1
    assert result.out.startswith(f"{bad}:4: (yaml): ")

    # An invalid file is not imported.
    refused = leadflow_config("import", str(bad), "--publish")
    assert refused.code == 1 and refused.err.startswith(f"{bad}:4: (yaml): ")
    assert leadflow_config("export", "--draft").code == 1


def test_cli_publish_rollback_and_versions(leadflow_config: ConfigCli, tmp_path: Path) -> None:
    assert "no configuration is published" in leadflow_config("export").err

    draft = leadflow_config("import", str(DEMO_CONFIG), "--actor", "ann")
    assert draft.out == f"imported {DEMO_CONFIG} as the draft (revision 1)\n"
    published = leadflow_config("publish", "--note", "first cut", "--actor", "ann")
    assert (published.code, published.out) == (0, "published version 1\n")

    changed = tmp_path / "changed.yaml"
    changed.write_text(DEMO_CONFIG.read_text().replace("name: Partner referrals", "name: Partners"))
    assert leadflow_config("import", str(changed), "--publish", "--actor", "bo").code == 0
    rolled = leadflow_config("rollback", "1", "--actor", "cy")
    assert rolled.out == "published version 1's configuration again as version 3\n"
    assert leadflow_config("rollback", "7").code == 1

    listed = leadflow_config("versions")
    rows = [line.strip().split("  ") for line in listed.out.splitlines()]
    assert [(r[0].strip(), r[2], r[3:]) for r in rows] == [
        ("3", "cy", ["rollback to version 1"]),
        ("2", "bo", []),
        ("1", "ann", ["first cut"]),
    ]
    diffs = leadflow_config("versions", "--diff", "--limit", "1").out
    assert "      -  - name: Partners\n      +  - name: Partner referrals\n" in diffs
    assert leadflow_config("export").out == leadflow_config("export", "--version", "1").out


def test_cli_publish_refuses_a_draft_with_problems(
    leadflow_config: ConfigCli, database: Database
) -> None:
    text = DEMO_CONFIG.read_text().replace("assign: {pool: EMEA AE}", "assign: {pool: EMEA SDR}")
    with database.session() as session:
        config_store.save_draft(session, load_yaml(text, check=False), "ann", None)
    result = leadflow_config("publish")
    assert result.code == 1
    exported = leadflow_config("export", "--draft").out
    line = exported.splitlines().index("    assign: {pool: EMEA SDR}") + 1
    assert result.err.splitlines()[1:] == [
        f"draft:{line}: rules[1].assign.pool: unknown pool 'EMEA SDR'"
    ]


def test_cli_config_on_a_database_never_migrated(tmp_path: Path) -> None:
    env = leadflow_env(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    result = ConfigCli(env, tmp_path)("versions")
    assert result.code == 1
    assert "is it migrated (leadflow db upgrade)?" in result.err


def test_dev_database_start_publishes_the_demo_configuration(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'app.db'}")
    db_upgrade(settings, seed=True)
    db_upgrade(settings, seed=True)  # a second start changes nothing
    db = Database(settings.effective_database_url)
    with db.read() as session:
        found = config_store.published(session)
        assert found is not None and found[0] == 1
        assert found[1] == load_yaml(DEMO_CONFIG.read_text())
        reps = rep_store.list_reps(session)
        assert [(r.name, r.email, r.crm_owner_id, r.slack_user_id) for r in reps] == [
            ("Avery Park", "avery.park@example.com", "local-owner-1", "U0DEMOAVERY"),
            ("Jordan Lee", "jordan.lee@example.com", "local-owner-2", "U0DEMOJORDAN"),
            ("Sam Rivera", "sam.rivera@example.com", "local-owner-3", "U0DEMOSAM"),
        ]
        assert config_store.versions(session)[0].published_by == "leadflow dev"
    db.dispose()
