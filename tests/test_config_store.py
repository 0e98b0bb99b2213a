"""The routing configuration as versioned data: YAML in and out (lines named for every
problem, a canonical export), the draft with optimistic saves, numbered versions with an
audit trail, rollback, the reps table following the published document, and the pools'
rotation state claimed with compare-and-set, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select

from cli_config import DEMO_CONFIG, seed_demo_configuration
from domain.config import Assign, ConfigError, Problem, RoutingConfig, Rule
from domain.config_yaml import dump_yaml, load_yaml, with_lines
from domain.rotation import MemberState, PoolState
from store import config as config_store
from store import reps as rep_store
from store.db import Database
from store.models import Rep
from tests.strategies import TERRITORIES, pools, rule_lists

DEMO = DEMO_CONFIG.read_text(encoding="utf-8")

# Values YAML 1.1 would read as something else when unquoted: base-60 numbers, octal
# numbers, yes/no booleans (Norway), dates, null; and text that needs quoting.
TRICKY = """\
reps:
  - email: Ann.Lee@Example.com
    name: "Ann O'Lee: \\"AE\\" #1"
    timezone: Europe/Berlin
    working_hours: {days: [mon, fri], start: 9:00, end: 17:30}
    out_of_office:
      - {from: 2026-07-01, until: 2026-07-14}
    crm_owner_id: "00512"
    slack_user_id: null
  - email: bo@example.com
    name: Bø Ünïcødé 東京
    active: no
pools:
  - name: yes
    strategy: weighted
    members:
      - {rep: ann.lee@example.com, weight: 3, daily_cap: 0}
      - {rep: bo@example.com}
    fallback: {queue: "on"}
    on_return: {catch_up: true, max_extra_per_day: 2}
territories:
  - name: Nordics
    countries: [NO, SE, DK]
    states: [Off]
    postal_prefixes: [010, 02139, "1e5"]
rules:
  - name: "17:30"
    when:
      all:
        - {field: title, op: regex, value: '^(vp|head)\\b.*[:#] '}
        - any:
            - {field: country, op: in_territory, value: Nordics}
            - {field: extra.tier, op: in, value: [gold, 3, 1.5, true, "null"]}
        - {field: company_size, op: between, value: [50, 1000]}
        - {field: phone, op: empty}
    assign: {account_owner: true, else: {pool: yes}}
  - name: off
    enabled: false
    assign: {rep: bo@example.com}
fallback: {pool: yes}
"""


def test_yaml_export_import_export_is_byte_identical() -> None:
    for text in (DEMO, TRICKY):
        exported = dump_yaml(load_yaml(text))
        assert dump_yaml(load_yaml(exported)) == exported
        # Any YAML reader sees the same document (quoting does not rely on our loader).
        assert yaml.safe_load(exported) == yaml.load(exported, Loader=yaml.SafeLoader)
        assert RoutingConfig.model_validate(yaml.safe_load(exported)) == load_yaml(text)


def test_yaml_reads_values_as_written_and_exports_them_quoted_where_needed() -> None:
    config = load_yaml(TRICKY)
    ann, bo = config.reps
    assert ann.email == "ann.lee@example.com"
    assert ann.working_hours is not None
    assert (ann.working_hours.start, ann.working_hours.end) == (time(9), time(17, 30))
    assert ann.out_of_office[0].from_ == date(2026, 7, 1)
    assert ann.crm_owner_id == "00512"
    assert bo.active is False  # "no" is read as text; pydantic reads it as false
    assert config.pools[0].name == "yes"
    assert config.territories[0].countries == ["NO", "SE", "DK"]
    assert config.territories[0].states == ["Off"]
    assert config.territories[0].postal_prefixes == ["010", "02139", "1e5"]
    assert config.rules[0].name == "17:30"
    exported = dump_yaml(config)
    assert "start: '09:00', end: '17:30'" in exported
    assert "{from: 2026-07-01, until: 2026-07-14}" in exported
    assert "countries: ['NO', SE, DK]" in exported
    assert "- name: '17:30'" in exported
    # The classic YAML 1.1 reader reads the export the same way.
    plain = yaml.safe_load(exported)
    assert plain["reps"][0]["working_hours"]["end"] == "17:30"
    assert plain["pools"][0]["name"] == "yes"
    assert plain["territories"][0]["postal_prefixes"] == ["010", "02139", "1e5"]


def test_yaml_export_is_readable_and_in_document_order() -> None:
    exported = dump_yaml(load_yaml(DEMO))
    top = [line for line in exported.splitlines() if line and not line.startswith(" ")]
    assert top == [
        "reps:",
        "pools:",
        "territories:",
        "rules:",
        "fallback: {pool: Inbound}",
        "scoring:",
        "nurture:",
        "handoff:",
    ]
    assert "null" not in exported and "[]" not in exported
    assert "    when: {field: source, op: eq, value: partner}\n" in exported
    assert "      - {rep: avery.park@example.com, weight: 2}\n" in exported


@st.composite
def routing_configs(draw: st.DrawFn) -> RoutingConfig:
    """A whole configuration from the routing engine's strategies, with names in any
    script, with punctuation and control characters (what YAML must quote or escape)."""
    names = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
    pool, reps = draw(pools())
    reps = {e: r.model_copy(update={"name": draw(names)}) for e, r in reps.items()}
    rules = [
        r.model_copy(update={"name": f"{i} {draw(names)}"})
        for i, r in enumerate(draw(rule_lists(max_size=4)))
    ]
    return RoutingConfig(
        reps=list(reps.values()),
        pools=[pool],
        territories=list(TERRITORIES),
        rules=rules,
        fallback=Assign(pool=pool.name),
    )


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(routing_configs())
def test_yaml_round_trip_keeps_any_configuration(config: RoutingConfig) -> None:
    exported = dump_yaml(config)
    again = load_yaml(exported, check=False)
    assert again == config
    assert dump_yaml(again) == exported


def _problems(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text)
    return caught.value.problems


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_yaml_syntax_error_names_its_line() -> None:
    text = DEMO.replace("    name: Jordan Lee\n", "    name: Jordan: Lee\n")
    (problem,) = _problems(text)
    assert problem.location == "(yaml)"
    assert problem.message == "mapping values are not allowed here (column 17)"
    assert problem.line == _line_of(text, "Jordan: Lee")

    text = DEMO.replace("    name: Jordan Lee\n", "    name: Jordan Lee\n   bad: indent\n")
    (problem,) = _problems(text)
    assert (problem.location, problem.line) == ("(yaml)", _line_of(text, "bad: indent"))


def test_yaml_syntax_error_line_is_exact_for_a_tab() -> None:
    text = "reps: []\npools: []\n\tfallback: {pool: x}\n"
    (problem,) = _problems(text)
    assert (problem.location, problem.line) == ("(yaml)", 3)


@pytest.mark.parametrize(
    ("change", "location", "needle"),
    [
        (
            (
                "    slack_user_id: U0DEMOJORDAN\n",
                "    slack_user_id: U0DEMOJORDAN\n    colour: red\n",
            ),
            "reps[1].colour",
            "colour: red",
        ),
        (
            ("{field: source, op: eq, value: partner}", "{field: source, op: regex, value: '(x'}"),
            "rules[0].when",
            "value: '(x'",
        ),
        (
            ("    assign: {pool: EMEA AE}", "    assign: {pool: EMEA SDR}"),
            "rules[1].assign.pool",
            "EMEA SDR",
        ),
        (
            (
                "{field: company_size, op: gte, value: 200}",
                "{field: company_size, op: over, value: 200}",
            ),
            "rules[1].when.all[1].op",
            "op: over",
        ),
        (
            (
                "      - rep: sam.rivera@example.com\n    fallback: {queue",
                "      - rep: nobody@example.com\n    fallback: {queue",
            ),
            "pools[2].members[1].rep",
            "nobody@example.com",
        ),
    ],
    ids=["unknown field", "bad regex", "unknown pool", "unknown op", "unknown rep"],
)
def test_yaml_problem_names_its_line(change: tuple[str, str], location: str, needle: str) -> None:
    old, new = change
    assert DEMO.count(old) == 1
    text = DEMO.replace(old, new)
    problems = _problems(text)
    assert [(p.location, p.line) for p in problems] == [(location, _line_of(text, needle))]


def test_yaml_missing_field_names_its_parent_line() -> None:
    text = DEMO.replace("  - name: North America\n    strategy", "  - strategy")
    (problem,) = _problems(text)
    assert problem.location == "pools[2].name"
    assert problem.message == "is required"
    assert problem.line == _line_of(text, "timezone: America/New_York") - 1


def test_yaml_refuses_duplicate_keys_python_tags_and_non_mappings() -> None:
    text = "reps: []\nfallback: {pool: a}\nreps: []\n"
    (problem,) = _problems(text)
    assert (problem.location, problem.line) == ("reps", 3)
    assert "given twice (first on line 1)" in problem.message

    (problem,) = _problems("fallback: !!python/object/apply:os.system [echo hi]\n")
    assert (problem.location, problem.line) == ("(yaml)", 1)

    (problem,) = _problems("- just\n- a list\n")
    assert problem.location == "(document)"
    (problem,) = _problems("")
    assert "empty document" in problem.message


def test_problems_found_on_a_configuration_get_lines_of_its_export() -> None:
    config = load_yaml(DEMO)
    broken = config.model_copy(update={"fallback": Assign(pool="Nowhere")})
    text = dump_yaml(broken)
    (placed,) = with_lines(text, [Problem(location="fallback.pool", message="unknown pool")])
    assert placed.line == _line_of(text, "fallback: {pool: Nowhere}")


# ---------------------------------------------------------------------------- the store


def test_migration_creates_the_configuration_tables(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"config_drafts", "config_versions", "config_audit", "pool_states"} <= tables


def test_draft_save_based_on_an_old_revision_is_refused(db: Database) -> None:
    config = load_yaml(DEMO)
    with db.session() as session:
        assert config_store.get_draft(session) is None
        assert config_store.save_draft(session, config, "ann", expected_revision=0) == 1
    renamed = _renamed_rule(config, 0, "Partners")
    with db.session() as session:
        assert config_store.save_draft(session, renamed, "bo", expected_revision=1) == 2
    with pytest.raises(config_store.StaleDraft, match="revision 2 by bo, not 1"):
        with db.session() as session:
            config_store.save_draft(session, config, "ann", expected_revision=1)
    with pytest.raises(config_store.StaleDraft):
        with db.session() as session:
            config_store.save_draft(session, config, "cy", expected_revision=0)
    with db.read() as session:
        draft = config_store.get_draft(session)
        assert draft is not None
        assert (draft.revision, draft.updated_by, draft.config) == (2, "bo", renamed)
        # Saving what the draft already holds changes nothing.
    with db.session() as session:
        assert config_store.save_draft(session, renamed, "bo", expected_revision=2) == 2
        assert config_store.save_draft(session, config, "ann", expected_revision=None) == 3


def test_publish_numbers_versions_and_audits_each_change_with_a_diff(db: Database) -> None:
    config = load_yaml(DEMO)
    with db.session() as session:
        assert config_store.latest_version(session) is None
        assert config_store.published(session) is None
        config_store.save_draft(session, config, "ann", None, action="imported")
        assert config_store.publish(session, "ann", "first") == 1
    with db.session() as session:
        config_store.save_draft(session, _renamed_rule(config, 0, "Partners"), "bo", 1)
        assert config_store.publish(session, "bo") == 2
        assert config_store.publish(session, "bo", "same again") == 3
    with db.read() as session:
        assert config_store.latest_version(session) == 3
        found = config_store.published(session)
        assert found is not None and found[0] == 3
        assert found[1].rules[0].name == "Partners"
        log = config_store.audit_log(session)
        versions = config_store.versions(session)
    assert [(e.action, e.actor, e.version) for e in reversed(log)] == [
        ("imported", "ann", None),
        ("published", "ann", 1),
        ("draft_saved", "bo", None),
        ("published", "bo", 2),
        ("published", "bo", 3),
    ]
    saved = log[2].diff
    assert "--- draft revision 1\n+++ draft revision 2\n" in saved
    assert "-  - name: Partner referrals\n+  - name: Partners\n" in saved
    assert log[4].diff.startswith("--- no draft\n+++ draft revision 1\n")
    assert "+++ version 1" in log[3].diff and "+  - name: Partner referrals" in log[3].diff
    assert "-  - name: Partner referrals\n+  - name: Partners\n" in log[1].diff
    assert log[0].diff == ""  # version 3 is version 2 again
    assert [(v.version, v.published_by, v.note) for v in versions] == [
        (3, "bo", "same again"),
        (2, "bo", ""),
        (1, "ann", "first"),
    ]
    assert versions[1].diff == log[1].diff
    assert versions[2].diff.startswith("--- no version\n+++ version 1\n")
    with db.read() as session:
        assert [v.version for v in config_store.versions(session, limit=2)] == [3, 2]
        assert config_store.versions(session, limit=2)[1].diff == versions[1].diff


def test_publish_refuses_a_draft_with_problems_and_publishes_nothing(db: Database) -> None:
    text = DEMO.replace("    assign: {pool: EMEA AE}", "    assign: {pool: EMEA SDR}")
    with db.session() as session:
        with pytest.raises(ConfigError):
            config_store.publish(session, "ann")  # no draft yet
        config_store.save_draft(session, load_yaml(text, check=False), "ann", None)
    with pytest.raises(ConfigError) as caught:
        with db.session() as session:
            config_store.publish(session, "ann")
    assert [p.location for p in caught.value.problems] == ["rules[1].assign.pool"]
    with db.read() as session:
        assert config_store.latest_version(session) is None
        assert [e.action for e in config_store.audit_log(session)] == ["draft_saved"]


def test_rollback_publishes_the_old_document_as_a_new_version_and_draft(db: Database) -> None:
    first = load_yaml(DEMO)
    second = _renamed_rule(first, 0, "Partners")
    with db.session() as session:
        config_store.save_draft(session, first, "ann", None)
        config_store.publish(session, "ann")
        config_store.save_draft(session, second, "ann", None)
        config_store.publish(session, "ann")
    with db.session() as session:
        assert config_store.rollback(session, 1, "bo") == 3
        with pytest.raises(config_store.UnknownVersion):
            config_store.rollback(session, 9, "bo")
    with db.read() as session:
        found = config_store.published(session)
        assert found == (3, first)
        draft = config_store.get_draft(session)
        assert draft is not None and draft.config == first and draft.revision == 3
        latest = config_store.versions(session, limit=1)[0]
        assert (latest.published_by, latest.note) == ("bo", "rollback to version 1")
        entry = config_store.audit_log(session, limit=1)[0]
        assert (entry.action, entry.version) == ("rolled_back", 3)
        assert "-  - name: Partners\n+  - name: Partner referrals\n" in entry.diff


def test_publish_makes_the_reps_table_follow_the_document(db: Database) -> None:
    with db.read() as session:
        before = {r.email: r.id for r in rep_store.list_reps(session)}
    assert len(before) == 3  # the demo reps of the fixture
    text = (
        DEMO.replace("    name: Jordan Lee\n", "    name: Jordan Lee-Smith\n")
        .replace("slack_user_id: U0DEMOJORDAN\n", "slack_user_id: U0NEW\n    active: false\n")
        .replace(
            "  - email: sam.rivera@example.com\n    name: Sam Rivera\n",
            "  - email: Kim.Ng@Example.com\n    name: Kim Ng\n",
        )
        .replace("sam.rivera@example.com", "kim.ng@example.com")
    )
    with db.session() as session:
        config_store.save_draft(session, load_yaml(text), "ann", None)
        config_store.publish(session, "ann")
    with db.read() as session:
        reps = {r.email: r for r in rep_store.list_reps(session)}
    assert set(reps) == {*before, "kim.ng@example.com"}
    assert {e: reps[e].id for e in before} == before  # ids kept
    jordan, sam, kim = (
        reps[e] for e in ("jordan.lee@example.com", "sam.rivera@example.com", "kim.ng@example.com")
    )
    assert (jordan.name, jordan.slack_user_id, jordan.active) == (
        "Jordan Lee-Smith",
        "U0NEW",
        False,
    )
    assert jordan.crm_owner_id == "local-owner-2"
    assert sam.active is False  # no longer in the document
    assert (kim.name, kim.crm_owner_id, kim.active) == ("Kim Ng", "local-owner-3", True)
    assert reps["avery.park@example.com"].active is True


def test_pool_state_compare_and_set_refuses_a_stale_revision(db: Database) -> None:
    one = PoolState(members={"a@example.com": MemberState(credit=1.0)}, decisions=1)
    two = PoolState(members={"a@example.com": MemberState(credit=-1.0)}, decisions=2)
    with db.session() as session:
        assert config_store.pool_states(session, ["Inbound"]) == {}
        assert config_store.save_pool_state(session, "Inbound", one, None) is True
        assert config_store.save_pool_state(session, "Inbound", two, None) is False
    with db.session() as session:
        assert config_store.pool_states(session, ["Inbound", "Other"]) == {"Inbound": (one, 1)}
        assert config_store.save_pool_state(session, "Inbound", two, 1) is True
        assert config_store.save_pool_state(session, "Inbound", one, 1) is False  # stale
    with db.read() as session:
        assert config_store.pool_states(session, ["Inbound"]) == {"Inbound": (two, 2)}


def test_concurrent_pool_state_claims_lose_no_decision(db: Database) -> None:
    def decide(_: int) -> int:
        attempts = 0
        while True:
            attempts += 1
            with db.session() as session:
                stored = config_store.pool_states(session, ["p"])
                state, revision = stored.get("p", (PoolState(), None))
                after = state.model_copy(update={"decisions": state.decisions + 1})
                if config_store.save_pool_state(session, "p", after, revision):
                    return attempts

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(decide, range(120)))
    with db.read() as session:
        state, revision = config_store.pool_states(session, ["p"])["p"]
    assert (state.decisions, revision) == (120, 120)


def test_dev_seed_publishes_the_demo_configuration_once(db: Database) -> None:
    with db.read() as session:
        ids = {r.email: r.id for r in rep_store.list_reps(session)}
    with db.session() as session:
        assert seed_demo_configuration(session) == 1
    with db.session() as session:
        assert seed_demo_configuration(session) is None
    with db.read() as session:
        found = config_store.published(session)
        assert found is not None and found[1] == load_yaml(DEMO)
        reps = rep_store.list_reps(session)
        log = config_store.audit_log(session)
    assert {r.email: r.id for r in reps} == ids
    assert [(r.crm_owner_id, r.slack_user_id) for r in reps] == [
        ("local-owner-1", "U0DEMOAVERY"),
        ("local-owner-2", "U0DEMOJORDAN"),
        ("local-owner-3", "U0DEMOSAM"),
    ]
    assert [(e.action, e.actor) for e in reversed(log)] == [
        ("imported", "leadflow dev"),
        ("published", "leadflow dev"),
    ]


def test_dev_seed_leaves_a_database_with_other_reps_alone(db: Database) -> None:
    with db.session() as session:
        session.add(Rep(name="Real Person", email="real@customer.example"))
    with db.session() as session:
        assert seed_demo_configuration(session) is None
        assert config_store.latest_version(session) is None
        assert session.scalars(select(Rep).where(Rep.active.is_(False))).first() is None


def test_demo_configuration_ships_with_the_repository() -> None:
    assert DEMO_CONFIG == Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
    config = load_yaml(DEMO)
    assert [p.name for p in config.pools][:2] == ["Inbound", "EMEA AE"]
    assert config.fallback == Assign(pool="Inbound")


def _renamed_rule(config: RoutingConfig, index: int, name: str) -> RoutingConfig:
    rules: list[Rule] = list(config.rules)
    rules[index] = rules[index].model_copy(update={"name": name})
    return config.model_copy(update={"rules": rules})


def test_a_yaml_alias_bomb_is_refused_by_the_loader_itself() -> None:
    """Whoever hands the text in (the API, ``leadflow config import``): six levels of ten
    aliases, a million conditions from a few hundred bytes, are refused at once."""
    levels = ["x:", "  - &w0 {field: score, op: gt, value: 1}"]
    levels += [f"  - &w{i} {{all: [{', '.join([f'*w{i - 1}'] * 10)}]}}" for i in range(1, 6)]
    bomb = "\n".join(
        [*levels, "rules:", "  - {name: r, when: *w5, assign: {pool: P}}", "fallback: {pool: P}"]
    )
    with pytest.raises(ConfigError) as refused:
        load_yaml(bomb, check=False)
    assert any("aliases expand" in p.message for p in refused.value.problems)
    with pytest.raises(ConfigError) as infinite:
        load_yaml(
            "pools: [{name: P, members: [{rep: a@x.com, weight: .inf}]}]\nfallback: {pool: P}",
            check=False,
        )
    assert infinite.value.problems
