"""The ``loopml`` command line, through Typer's CliRunner against a store in ``tmp_path``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import loopml
from loopml.cli import runs as runs_module
from loopml.cli.app import app
from loopml.entities import Metric
from loopml.store.sql.engine import HEAD_REVISION

# Run ids are fixed while seeding so that prefixes are predictable: the first two share
# the prefix "aaaaaa" (ambiguous), the others do not.
RUN_A1 = "aaaaaa" + "1" * 26
RUN_A2 = "aaaaaa" + "2" * 26
RUN_B = "bbbbbb" + "3" * 26
RUN_D = "dddddd" + "4" * 26
UNKNOWN = "f" * 32


@dataclass
class Seeded:
    """A store with runs: churn/{A1 finished, A2 failed, B running}, default/{D finished}."""

    db: Path
    store: list[str]  # the global option to use it: ["--store", "<db>"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in an empty folder with no loopml configuration and plain output."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LOOPML_HOME",
        "LOOPML_TRACKING_URI",
        "LOOPML_ARTIFACT_URI",
        "LOOPML_PROJECT",
        "COLUMNS",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded store, made once per session (creating a schema is slow); tests get a copy."""
    folder = tmp_path_factory.mktemp("template")
    ids = iter([RUN_A1, RUN_A2, RUN_B, RUN_D])
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        m.setattr("loopml.store.base.new_id", lambda: next(ids))
        client = loopml.Client(f"sqlite:///{folder / 'x.db'}")
        try:
            a1 = client.create_run(
                "churn",
                name="rf-deep",
                params={"lr": 0.1, "model": "rf", "depth": 8},
                tags={"team": "risk"},
                heartbeat=False,
            )
            losses = [Metric("loss", 1.0 / (s + 1), s, 1_000 + s) for s in range(30)]
            client.log_batch(a1.run_id, metrics=[*losses, Metric("auc", 0.91, 0, 1_000)])
            client.log_text(a1.run_id, "hello", "notes/readme.txt")
            client.end_run(a1.run_id)
            a2 = client.create_run(
                "churn",
                name="rf-shallow",
                params={"lr": 0.01, "model": "rf", "depth": 8},
                heartbeat=False,
            )
            client.log_batch(a2.run_id, metrics=[Metric("auc", 0.85, 0, 1_000)])
            client.end_run(a2.run_id, "failed")
            b = client.create_run("churn", name="xgb", params={"lr": 0.3}, heartbeat=False)
            client.log_batch(b.run_id, metrics=[Metric("auc", 0.88, 0, 1_000)])
            d = client.create_run("default", name="baseline", heartbeat=False)
            client.end_run(d.run_id)
        finally:
            client.close()
    return folder


@pytest.fixture
def seeded(_template: Path, tmp_path: Path) -> Seeded:
    store = tmp_path / "store"
    shutil.copytree(_template, store)
    db = store / "x.db"
    return Seeded(db, ["--store", str(db)])


def invoke(args: list[str], input: str | None = None) -> Result:
    return CliRunner().invoke(app, args, input=input)


def assert_error(result: Result, expected: str) -> None:
    """Exit status 1 and exactly one line on stderr: ``error: ...`` containing ``expected``."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def as_json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return json.loads(result.stdout)


# --- the app --------------------------------------------------------------------------------


def test_help_lists_every_command_group() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for word in ("init", "projects", "runs", "db", "--store", "--artifacts"):
        assert word in result.stdout
    sub = invoke(["runs", "--help"])
    for word in ("list", "show", "compare", "delete", "metric"):
        assert word in sub.stdout


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopml {loopml.__version__}"


def test_usage_errors_keep_exit_code_2() -> None:
    assert invoke(["runs", "nope"]).exit_code == 2
    assert invoke(["runs", "list", "--max-results", "many"]).exit_code == 2
    assert invoke(["runs", "list", "--project", "x", "--all-projects"]).exit_code == 2


# --- init -------------------------------------------------------------------------------------


def test_init_creates_a_home_and_is_idempotent(tmp_path: Path) -> None:
    first = invoke(["init"])
    assert first.exit_code == 0, first.output
    home = tmp_path / ".loopml"
    assert (home / "loopml.db").is_file()
    assert (home / "artifacts").is_dir()
    assert f"Initialized loopml home in {home}" in first.stdout
    again = invoke(["init"])
    assert again.exit_code == 0
    assert again.stdout.strip() == f"loopml home already exists at {home}"
    # The new home is found, and it is an empty, working store.
    assert as_json(invoke(["projects", "list", "--json"])) == []
    assert invoke(["runs", "list"]).stdout.strip() == "No runs in project 'default'."


def test_init_in_a_path_and_in_loopml_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["init", "deep/project"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "deep/project/.loopml/loopml.db").is_file()
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "elsewhere"))
    assert invoke(["init"]).exit_code == 0
    assert (tmp_path / "elsewhere/loopml.db").is_file()


def test_commands_find_a_home_above_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke(["init"]).exit_code == 0
    assert invoke(["projects", "create", "churn"]).exit_code == 0
    (tmp_path / "src/pkg").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src/pkg")
    projects = as_json(invoke(["projects", "list", "--json"]))
    assert isinstance(projects, list)
    assert [p["name"] for p in projects] == ["churn"]


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list"],
        ["runs", "show", "abcdef"],
        ["runs", "compare", "abcdef", "abcdef01"],
        ["runs", "metric", "abcdef", "loss"],
        ["runs", "delete", "abcdef", "--yes"],
        ["projects", "list"],
        ["db", "current"],
        ["db", "upgrade"],
    ],
)
def test_read_only_commands_never_create_a_home(tmp_path: Path, args: list[str]) -> None:
    result = invoke(args)
    assert_error(
        result,
        f"error: no loopml home found in {Path.cwd()} or above; run 'loopml init' "
        "or set LOOPML_TRACKING_URI",
    )
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_error(invoke(["--store", "nope/x.db", "runs", "list"]), "no loopml store at")
    monkeypatch.setenv("LOOPML_TRACKING_URI", f"sqlite:///{tmp_path}/gone.db")
    assert_error(invoke(["projects", "list"]), f"no loopml store at {tmp_path}/gone.db")
    monkeypatch.delenv("LOOPML_TRACKING_URI")
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "empty-home"))
    assert_error(invoke(["runs", "list"]), "run 'loopml init'")
    assert_error(invoke(["--store", "ftp://x", "runs", "list"]), "unknown scheme 'ftp'")
    assert list(tmp_path.iterdir()) == []


# --- projects --------------------------------------------------------------------------------


def test_projects_create_and_list(seeded: Seeded) -> None:
    created = invoke([*seeded.store, "projects", "create", "fraud", "-d", "card fraud"])
    assert created.exit_code == 0, created.output
    assert "Created project 'fraud'" in created.stdout
    table = invoke([*seeded.store, "projects", "list"])
    assert table.exit_code == 0
    assert "card fraud" in table.stdout
    listed = as_json(invoke([*seeded.store, "projects", "list", "--json"]))
    assert isinstance(listed, list)
    assert [p["name"] for p in listed] == ["churn", "default", "fraud"]
    assert set(listed[0]) == {"project_id", "name", "description", "created_at", "created"}
    again = invoke([*seeded.store, "projects", "create", "fraud"])
    assert_error(again, "fraud")


def test_projects_create_makes_the_home_on_first_write(tmp_path: Path) -> None:
    result = invoke(["projects", "create", "churn", "--json"])
    data = as_json(result)
    assert isinstance(data, dict)
    assert data["name"] == "churn"
    assert (tmp_path / ".loopml/loopml.db").is_file()


# --- runs list -------------------------------------------------------------------------------


def test_runs_list_table_shows_the_default_columns(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "list", "--project", "churn"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in ("aaaaaa11", "rf-deep", "rf-shallow", "xgb", "finished", "failed", "running"):
        assert word in out
    for column in ("metrics.auc", "metrics.loss", "params.depth", "params.lr", "params.model"):
        assert column in out
    assert RUN_A1 not in out  # ids are shortened to 8 characters
    assert "baseline" not in out  # another project


def test_runs_list_defaults_to_the_default_project(seeded: Seeded) -> None:
    out = invoke([*seeded.store, "runs", "list"]).stdout
    assert "baseline" in out
    assert "rf-deep" not in out


def test_runs_list_json_with_filter_order_and_columns(seeded: Seeded) -> None:
    data = as_json(
        invoke(
            [
                *seeded.store,
                "runs",
                "list",
                "-p",
                "churn",
                "--filter",
                "metrics.auc > 0.86",
                "--order-by",
                "metrics.auc asc",
                "--json",
            ]
        )
    )
    assert isinstance(data, dict)
    assert [r["run_id"] for r in data["runs"]] == [RUN_B, RUN_A1]
    assert data["next_page_token"] is None
    first = data["runs"][0]
    assert first["project"] == "churn"
    assert first["status"] == "running"
    assert first["params"] == {"lr": "0.3"}
    assert first["metrics"] == {"auc": 0.88}
    assert first["started"].endswith("Z")
    table = invoke([*seeded.store, "runs", "list", "-p", "churn", "--columns", "params.model"])
    assert "params.model" in table.stdout
    assert "metrics.auc" not in table.stdout


def test_runs_list_all_projects_and_pages(seeded: Seeded) -> None:
    first = invoke([*seeded.store, "runs", "list", "--all-projects", "--max-results", "3"])
    assert first.exit_code == 0, first.output
    assert "project" in first.stdout
    assert "More runs: add --page-token " in first.stdout
    token = first.stdout.rsplit("--page-token ", 1)[1].split()[0]
    page1 = as_json(invoke([*seeded.store, "runs", "list", "-A", "-n", "3", "--json"]))
    assert isinstance(page1, dict)
    assert page1["next_page_token"] == token
    page2 = as_json(invoke([*seeded.store, "runs", "list", "-A", "--page-token", token, "--json"]))
    assert isinstance(page2, dict)
    seen = [r["run_id"] for r in page1["runs"] + page2["runs"]]
    assert sorted(seen) == sorted([RUN_A1, RUN_A2, RUN_B, RUN_D])


def test_runs_list_marks_dead_runs_failed(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_HEARTBEAT_TIMEOUT", "0.001")
    data = as_json(invoke([*seeded.store, "runs", "list", "-p", "churn", "--json"]))
    assert isinstance(data, dict)
    status = {r["run_id"]: r["status"] for r in data["runs"]}
    assert status[RUN_B] == "failed"


def test_runs_list_errors(seeded: Seeded) -> None:
    store = seeded.store
    assert_error(invoke([*store, "runs", "list", "--filter", "metrics.auc >"]), "filter")
    assert_error(invoke([*store, "runs", "list", "--order-by", "bogus"]), "unknown attribute")
    assert_error(invoke([*store, "runs", "list", "-n", "0"]), "--max-results must be between 1")
    assert_error(invoke([*store, "runs", "list", "-n", "50001"]), "--max-results")
    assert_error(invoke([*store, "runs", "list", "-p", "nope"]), "project 'nope' does not exist")
    assert_error(invoke([*store, "runs", "list", "-c", "lr"]), "--columns: 'lr'")
    # A malformed filter is reported even before the default project exists.
    assert invoke(["init"]).exit_code == 0
    assert_error(invoke(["runs", "list", "-f", "name = "]), "filter")


# --- runs show --------------------------------------------------------------------------------


def test_runs_show_table(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "show", RUN_A1])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in (RUN_A1, "rf-deep", "churn", "finished", "Params", "Metrics", "Tags", "risk"):
        assert word in out
    for word in ("Environment", "python", "Artifacts", "notes/readme.txt", "5 B", "2cf24dba5fb0"):
        assert word in out


def test_runs_show_json_by_prefix(seeded: Seeded) -> None:
    data = as_json(invoke([*seeded.store, "runs", "show", "bbbbbb", "--json"]))
    assert isinstance(data, dict)
    assert data["run_id"] == RUN_B
    assert data["end_time"] is None
    data = as_json(invoke([*seeded.store, "runs", "show", RUN_A1[:10].upper(), "--json"]))
    assert isinstance(data, dict)
    assert data["run_id"] == RUN_A1
    assert data["project"] == "churn"
    assert data["params"] == {"depth": "8", "lr": "0.1", "model": "rf"}
    assert data["metrics"] == {"auc": 0.91, "loss": pytest.approx(1 / 30)}
    assert data["environment"]["packages"] == 0
    assert data["environment"]["python_version"].startswith("3.")
    [artifact] = data["artifacts"]
    assert artifact["path"] == "notes/readme.txt"
    assert artifact["size"] == 5


def test_runs_show_errors(seeded: Seeded) -> None:
    store = seeded.store
    assert_error(invoke([*store, "runs", "show", "aaaaaa"]), "ambiguous")
    assert_error(invoke([*store, "runs", "show", "aaaaaa"]), RUN_A2)
    assert_error(invoke([*store, "runs", "show", "eeeeee"]), "no run id starts with 'eeeeee'")
    assert_error(invoke([*store, "runs", "show", "bbb"]), "at least 6")
    assert_error(invoke([*store, "runs", "show", "not-an-id!"]), "is not a run id")
    assert_error(invoke([*store, "runs", "show", UNKNOWN]), f"run '{UNKNOWN}' does not exist")


# --- runs compare -----------------------------------------------------------------------------


def test_runs_compare_table_marks_differing_params(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "compare", RUN_A1, RUN_A2[:8]])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "rf-deep" in out and "rf-shallow" in out
    assert "params.lr *" in out
    assert "params.depth *" not in out and "params.depth" in out
    assert "metrics.auc" in out
    assert "* params that differ" in out
    only = invoke([*seeded.store, "runs", "compare", RUN_A1, RUN_A2, "--only-diff"])
    assert "params.lr" in only.stdout
    assert "params.depth" not in only.stdout


def test_runs_compare_json(seeded: Seeded) -> None:
    data = as_json(invoke([*seeded.store, "runs", "compare", RUN_A1, RUN_A2, RUN_B, "--json"]))
    assert isinstance(data, dict)
    assert [r["run_id"] for r in data["runs"]] == [RUN_A1, RUN_A2, RUN_B]
    assert data["params"]["lr"] == ["0.1", "0.01", "0.3"]
    assert data["params"]["depth"] == ["8", "8", None]
    assert data["metrics"]["auc"] == [0.91, 0.85, 0.88]
    assert data["differing_params"] == ["depth", "lr", "model"]
    same = as_json(
        invoke([*seeded.store, "runs", "compare", RUN_A1, RUN_A1, "--only-diff", "--json"])
    )
    assert isinstance(same, dict)
    assert same["params"] == {} and same["metrics"] == {}


def test_runs_compare_errors(seeded: Seeded) -> None:
    assert invoke([*seeded.store, "runs", "compare", RUN_A1]).exit_code == 2
    assert_error(invoke([*seeded.store, "runs", "compare", RUN_A1, UNKNOWN]), UNKNOWN)


# --- runs delete ------------------------------------------------------------------------------


def _exists(seeded: Seeded, run_id: str) -> bool:
    return invoke([*seeded.store, "runs", "show", run_id, "--json"]).exit_code == 0


def test_runs_delete_refuses_without_a_terminal(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "delete", RUN_B])
    assert_error(result, "stdin is not a terminal; pass --yes")
    assert _exists(seeded, RUN_B)


def test_runs_delete_with_yes(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "delete", "bbbbbb", RUN_D, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"Deleted run {RUN_B} (xgb)" in result.stdout
    assert not _exists(seeded, RUN_B)
    assert not _exists(seeded, RUN_D)
    assert _exists(seeded, RUN_A1)


def test_runs_delete_asks_on_a_terminal(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "_stdin_is_interactive", lambda: True)
    declined = invoke([*seeded.store, "runs", "delete", RUN_B], input="n\n")
    assert declined.exit_code == 1
    assert "Delete 1 run?" in declined.stdout
    assert "Nothing deleted." in declined.stderr
    assert _exists(seeded, RUN_B)
    accepted = invoke([*seeded.store, "runs", "delete", RUN_B], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not _exists(seeded, RUN_B)


def test_runs_delete_unknown_run_deletes_nothing(seeded: Seeded) -> None:
    assert_error(invoke([*seeded.store, "runs", "delete", RUN_B, UNKNOWN, "-y"]), UNKNOWN)
    assert _exists(seeded, RUN_B)


# --- runs metric ------------------------------------------------------------------------------


def test_runs_metric_summary_and_sparkline(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "metric", RUN_A1[:6] + "1", "loss"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "loss in run rf-deep" in out
    assert "points       30" in out
    assert "last step    29" in out
    assert "max          1" in out
    assert "█" in out and "▁" in out


def test_runs_metric_json(seeded: Seeded) -> None:
    data = as_json(invoke([*seeded.store, "runs", "metric", RUN_A1, "loss", "--json"]))
    assert isinstance(data, dict)
    assert data["run_id"] == RUN_A1
    assert data["summary"]["points"] == 30
    assert data["summary"]["first_step"] == 0
    assert data["summary"]["min"] == pytest.approx(1 / 30)
    assert data["points"][0] == {"step": 0, "timestamp": 1_000, "value": 1.0}
    assert len(data["points"]) == 30


def test_runs_metric_unknown_key(seeded: Seeded) -> None:
    result = invoke([*seeded.store, "runs", "metric", RUN_A1, "nope"])
    assert_error(result, "has no metric 'nope'; its metrics are: auc, loss")


# --- db ---------------------------------------------------------------------------------------


def test_db_current_and_upgrade_on_a_current_store(seeded: Seeded) -> None:
    current = invoke([*seeded.store, "db", "current"])
    assert current.exit_code == 0, current.output
    assert f"revision: {HEAD_REVISION} (current)" in current.stdout
    data = as_json(invoke(["db", "current", "--store", str(seeded.db), "--json"]))
    assert data == {
        "store": f"sqlite:///{seeded.db}",
        "revision": HEAD_REVISION,
        "head": HEAD_REVISION,
        "current": True,
    }
    upgraded = invoke(["db", "upgrade", "--store", str(seeded.db)])
    assert upgraded.exit_code == 0
    assert f"is already at revision {HEAD_REVISION}" in upgraded.stdout


def test_db_upgrade_an_empty_database(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    db.touch()
    current = invoke(["db", "current", "--store", str(db)])
    assert "revision: none (empty database)" in current.stdout
    upgraded = invoke(["db", "upgrade", "--store", str(db)])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.strip() == f"upgraded sqlite:///{db}: (empty) -> {HEAD_REVISION}"


def test_db_with_an_unknown_revision(seeded: Seeded) -> None:
    with sqlite3.connect(seeded.db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    current = invoke([*seeded.store, "db", "current"])
    assert current.exit_code == 0
    assert "revision: 9999 (unknown to this loopml" in current.stdout
    assert_error(invoke([*seeded.store, "db", "upgrade"]), "9999")
    assert_error(invoke([*seeded.store, "runs", "list"]), "9999")


def test_db_refuses_the_memory_store() -> None:
    assert_error(invoke(["db", "current", "--store", "memory://"]), "in-memory store")


# --- main() -----------------------------------------------------------------------------------


def test_main_exits_130_quietly_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopml import cli
    from loopml.cli import app as app_module

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(app_module, "app", interrupted)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 130
    assert capsys.readouterr().err == ""


def test_ctrl_c_inside_a_command_exits_130(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "open_client", interrupted)
    result = invoke([*seeded.store, "runs", "list"])
    assert result.exit_code == 130
    assert result.output == ""


def test_main_prints_one_error_line(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopml import cli

    monkeypatch.setattr(sys, "argv", ["loopml", *seeded.store, "runs", "show", UNKNOWN])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: run '{UNKNOWN}' does not exist")


# --- the real command -------------------------------------------------------------------------


def test_the_real_command_in_a_subprocess(seeded: Seeded) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "loopml.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    help_ = run("--help")
    assert help_.returncode == 0, help_.stderr
    assert "Usage: " in help_.stdout and "runs" in help_.stdout
    listed = run(*seeded.store, "runs", "list", "--all-projects", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["runs"]) == 4
    missing = run("--store", str(seeded.db.parent / "nope.db"), "runs", "list")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    # `loopml --help` stays fast because the CLI imports nothing heavy up front.
    heavy = ["loopml.client", "pydantic_settings", "sqlalchemy", "pandas", "rich", "numpy"]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, loopml.cli.app; print([m for m in {heavy!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


# --- global options and rendering helpers -----------------------------------------------------


def test_global_options_reach_the_client(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    real = loopml.Client

    def recording(**kwargs: object) -> loopml.Client:
        seen.update(kwargs)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("loopml.client.Client", recording)
    result = invoke([*seeded.store, "--artifacts", "s3://bucket/prefix", "projects", "list"])
    assert result.exit_code == 0, result.output
    assert seen == {"tracking_uri": f"sqlite:///{seeded.db}", "artifact_uri": "s3://bucket/prefix"}


def test_formatters() -> None:
    from loopml.cli import output

    assert output.format_duration(None) == "-"
    assert output.format_duration(850) == "850ms"
    assert output.format_duration(12_340) == "12.3s"
    assert output.format_duration(245_000) == "4m 05s"
    assert output.format_duration(7_380_000) == "2h 03m"
    assert output.format_size(512) == "512 B"
    assert output.format_size(1536) == "1.5 KiB"
    assert output.format_size(3 * 1024**3) == "3.0 GiB"
    now = 10 * 86_400_000
    assert output.format_started(now - 5_000, now) == "5s ago"
    assert output.format_started(now - 3 * 3_600_000, now) == "3h ago"
    assert output.format_started(0, now) == "1970-01-01 00:00"
    assert output.iso(0) == "1970-01-01T00:00:00Z"
    assert output.format_value(0.123456789) == "0.123457"
    assert output.format_value(None) == "-"


def test_json_output_stays_valid_with_non_finite_values() -> None:
    from loopml.cli import output

    data = output.json_value({"a": [float("nan"), float("inf"), -float("inf"), 1.5], "b": (1,)})
    assert data == {"a": ["nan", "inf", "-inf", 1.5], "b": [1]}
    json.dumps(data, allow_nan=False)


def test_sparkline() -> None:
    from loopml.cli import output

    assert output.sparkline([]) == ""
    assert output.sparkline([float("nan")]) == ""
    assert output.sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert output.sparkline([2.0, 2.0]) == "▅▅"
    long = output.sparkline([float(i) for i in range(1000)], width=40)
    assert len(long) == 40
    assert long[0] == "▁" and long[-1] == "█"
