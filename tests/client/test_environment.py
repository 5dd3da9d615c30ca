"""Environment capture: Python, platform, packages, command, git state, and the seed."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import loopml
from loopml.client import environment
from loopml.config import Settings
from loopml.errors import InvalidArgument


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no seed and a fresh git cache, and leaves nothing behind."""
    monkeypatch.setattr(environment, "_seed", None)
    # set_seed exports PYTHONHASHSEED: setenv first so that monkeypatch restores the original
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    monkeypatch.delenv("PYTHONHASHSEED")
    _clear_caches()
    yield
    _clear_caches()


def _clear_caches() -> None:
    """Forget the cached git state (and captures built from it): a test changed the repo."""
    environment._git_state.cache_clear()
    capture = getattr(environment, "_capture", None)
    if capture is not None:
        capture.cache_clear()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    settings = Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=True)
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"), settings=settings
    ) as c:
        yield c


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny git repository with one commit, as the working directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    return repo


def test_capture_records_python_platform_packages_and_command() -> None:
    env = environment.capture_environment()
    assert env.python_version == platform.python_version()
    assert env.python_version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert env.platform == platform.platform()
    assert env.command == tuple(sys.argv)
    assert "sqlalchemy" in env.packages
    assert "numpy" in env.packages
    assert env.packages["numpy"] == np.__version__
    assert all(name == name.lower() for name in env.packages)
    assert environment.capture_environment(packages=False).packages == {}


def test_a_run_records_its_environment(client: loopml.Client) -> None:
    run = client.create_run("p")
    env = client.get_environment(run.run_id)
    assert env is not None
    assert env.python_version == platform.python_version()
    assert "sqlalchemy" in env.packages
    assert env.command == tuple(sys.argv)
    assert env.seed is None
    # runs of one process share one stored environment
    assert client.create_run("p").environment_id == run.environment_id


def test_a_run_without_environment_capture_has_none(client: loopml.Client) -> None:
    run = client.create_run("p", capture_environment=False)
    assert run.environment_id is None
    assert client.get_environment(run.run_id) is None


def test_capture_packages_setting_is_honoured(tmp_path: Path) -> None:
    settings = Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=False)
    with loopml.Client(
        f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "a"), settings=settings
    ) as c:
        env = c.get_environment(c.create_run("p").run_id)
    assert env is not None and dict(env.packages) == {}


def test_git_commit_and_dirty_flag(client: loopml.Client, git_repo: Path) -> None:
    head = _git(git_repo, "rev-parse", "HEAD")
    clean = client.get_environment(client.create_run("p").run_id)
    assert clean is not None
    assert clean.git_commit == head and len(head) == 40
    assert clean.git_dirty is False

    (git_repo / "notes.txt").write_text("untracked files do not make the tree dirty")
    _clear_caches()
    still_clean = client.get_environment(client.create_run("p").run_id)
    assert still_clean is not None and still_clean.git_dirty is False

    (git_repo / "train.py").write_text("print('v2')\n")
    _clear_caches()
    dirty = client.get_environment(client.create_run("p").run_id)
    assert dirty is not None
    assert dirty.git_commit == head
    assert dirty.git_dirty is True

    _git(git_repo, "commit", "-q", "-am", "second")
    _clear_caches()
    committed = client.get_environment(client.create_run("p").run_id)
    assert committed is not None
    assert committed.git_commit == _git(git_repo, "rev-parse", "HEAD") != head
    assert committed.git_dirty is False


def test_outside_a_git_repository_there_is_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(outside)
    env = environment.capture_environment(packages=False)
    assert env.git_commit is None and env.git_dirty is None


def test_without_git_installed_there_is_no_commit(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(git_repo / "no-bin-here"))
    env = environment.capture_environment(packages=False)
    assert env.git_commit is None and env.git_dirty is None


def test_set_seed_is_recorded_with_the_next_run(client: loopml.Client) -> None:
    before = client.create_run("p")
    assert loopml.set_seed(42) == 42
    assert environment.get_seed() == 42
    after = client.create_run("p")
    env = client.get_environment(after.run_id)
    assert env is not None and env.seed == 42
    old = client.get_environment(before.run_id)
    assert old is not None and old.seed is None
    assert after.environment_id != before.environment_id


def test_set_seed_seeds_python_and_numpy() -> None:
    loopml.set_seed(7)
    first = (random.random(), np.random.rand())
    loopml.set_seed(7)
    assert (random.random(), np.random.rand()) == first
    assert os.environ["PYTHONHASHSEED"] == "7"
    assert loopml.set_seed(0) == 0
    assert loopml.set_seed(2**32 - 1) == 2**32 - 1


@pytest.mark.parametrize("bad", [-1, 2**32, "42", 4.2, 42.0, True, None, [42]])
def test_bad_seeds_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        loopml.set_seed(bad)  # type: ignore[arg-type]
    assert str(info.value) == f"seed must be an integer in [0, 2**32), got {bad!r}"
    assert environment.get_seed() is None
