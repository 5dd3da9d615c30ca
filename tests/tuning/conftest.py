"""Fixtures of the tuning tests: a fresh SQLite store per test behind the fluent API, with no
active run, project or client leaking in or out (helpers live in tuning_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.client import context


@pytest.fixture
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite store in a temporary folder, set as the fluent API's store."""
    uri = f"sqlite:///{tmp_path}/store/loopml.db"
    monkeypatch.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LOOPML_TRACKING_URI", uri)
    monkeypatch.delenv("LOOPML_PROJECT", raising=False)
    monkeypatch.setattr(context, "_project", None)
    loopml.set_tracking_uri(uri)
    yield uri
    leaked = loopml.active_run()
    client = context.peek_client()
    loopml.set_tracking_uri(None)
    if client is not None:
        client.close()
    assert leaked is None, f"the test left run {leaked.run_id} active"


@pytest.fixture
def client(store_uri: str) -> loopml.Client:
    """The fluent API's client on the test's store."""
    return loopml.get_client()
