"""The artifact-index half of the store conformance suite.

:class:`ArtifactIndexSuite` checks :meth:`~loopml.store.Store.log_artifacts`,
:meth:`~loopml.store.Store.list_artifacts` and :meth:`~loopml.store.Store.get_artifact`: the
index of files logged to a run (the blobs themselves live in the artifact store, with their own
suite). :class:`~loopml.testing.StoreSuite` inherits it.
"""

from __future__ import annotations

from typing import Any

import pytest

from loopml.entities import ArtifactInfo, Project, Run, now_ms
from loopml.errors import ArtifactNotFound, InvalidArgument, RunNotFound, UnsafePath
from loopml.store.base import Store, new_id

__all__ = ["ArtifactIndexSuite"]

SHA_A, SHA_B = "a" * 64, "b" * 64


def _run(store: Store, project: Project | None = None, **kwargs: Any) -> Run:
    project = project or store.get_or_create_project("proj")
    return store.create_run(project.project_id, **kwargs)


class ArtifactIndexSuite:
    """Tests of the artifact index; mixed into :class:`~loopml.testing.StoreSuite`."""

    def test_log_and_get_artifacts(self, store: Store) -> None:
        run = _run(store)
        before = now_ms()
        store.log_artifacts(
            run.run_id,
            [ArtifactInfo("model.pkl", SHA_A, 10, 123), ArtifactInfo("a.txt", SHA_B, 0)],
        )
        assert store.get_artifact(run.run_id, "model.pkl") == ArtifactInfo(
            "model.pkl", SHA_A, 10, 123
        )
        stamped = store.get_artifact(run.run_id, "a.txt")
        assert (stamped.sha256, stamped.size) == (SHA_B, 0)
        assert before <= stamped.created_at <= now_ms()
        store.log_artifacts(run.run_id, [])
        assert [a.path for a in store.list_artifacts(run.run_id)] == ["a.txt", "model.pkl"]

    def test_list_artifacts_prefix_is_a_folder(self, store: Store) -> None:
        run = _run(store)
        paths = ["b.txt", "a/x.txt", "ab/y.txt", "a", "a/deep/z.bin", "a.txt"]
        store.log_artifacts(run.run_id, [ArtifactInfo(p, SHA_A, 1, 1) for p in paths])

        def listed(prefix: str) -> list[str]:
            return [a.path for a in store.list_artifacts(run.run_id, prefix)]

        assert listed("") == ["a", "a.txt", "a/deep/z.bin", "a/x.txt", "ab/y.txt", "b.txt"]
        assert listed("a") == ["a", "a/deep/z.bin", "a/x.txt"]
        assert listed("a/") == listed("./a") == listed("a")
        assert listed("a/deep") == ["a/deep/z.bin"]
        assert listed("ab") == ["ab/y.txt"]
        assert listed("a/x.txt") == ["a/x.txt"]
        assert listed("zzz") == listed("a/x") == []
        assert listed(".") == listed("/") == listed("")

    def test_relogging_an_artifact_path_replaces_it(self, store: Store) -> None:
        run = _run(store)
        store.log_artifacts(run.run_id, [ArtifactInfo("m.pkl", SHA_A, 1, 1)])
        store.log_artifacts(run.run_id, [ArtifactInfo("./m.pkl", SHA_B, 2, 2)])
        assert store.list_artifacts(run.run_id) == [ArtifactInfo("m.pkl", SHA_B, 2, 2)]
        store.log_artifacts(
            run.run_id, [ArtifactInfo("x", SHA_A, 1, 1), ArtifactInfo("x", SHA_B, 3, 3)]
        )
        assert store.get_artifact(run.run_id, "x") == ArtifactInfo("x", SHA_B, 3, 3)

    def test_artifact_paths_are_normalized(self, store: Store) -> None:
        run = _run(store)
        store.log_artifacts(run.run_id, [ArtifactInfo("./plots//roc.png", SHA_A, 1, 1)])
        assert [a.path for a in store.list_artifacts(run.run_id)] == ["plots/roc.png"]
        assert store.get_artifact(run.run_id, "plots/./roc.png").path == "plots/roc.png"

    def test_unsafe_artifact_paths_are_refused(self, store: Store) -> None:
        run = _run(store)
        for bad in ("../x", "/etc/passwd", "a/../../b", "%2e%2e/x", "", "a\\b", "C:/x", "a\x00"):
            with pytest.raises(UnsafePath):
                store.log_artifacts(
                    run.run_id, [ArtifactInfo("ok.txt", SHA_A, 1), ArtifactInfo(bad, SHA_A, 1)]
                )
            with pytest.raises(UnsafePath):
                store.get_artifact(run.run_id, bad)
            if bad:
                with pytest.raises(UnsafePath):
                    store.list_artifacts(run.run_id, bad)
        for bad_info in (ArtifactInfo("x", SHA_A, -1), ("x", SHA_A, 1)):
            with pytest.raises(InvalidArgument):
                store.log_artifacts(run.run_id, [bad_info])  # type: ignore[list-item]
        assert store.list_artifacts(run.run_id) == []

    def test_unknown_artifacts_and_runs(self, store: Store) -> None:
        run = _run(store)
        store.log_artifacts(run.run_id, [ArtifactInfo("a/b.txt", SHA_A, 1)])
        with pytest.raises(ArtifactNotFound, match=r"a/c\.txt"):
            store.get_artifact(run.run_id, "a/c.txt")
        with pytest.raises(ArtifactNotFound):
            store.get_artifact(run.run_id, "a")  # a folder is not a file
        missing = new_id()
        with pytest.raises(RunNotFound):
            store.log_artifacts(missing, [ArtifactInfo("x", SHA_A, 1)])
        with pytest.raises(RunNotFound):
            store.list_artifacts(missing)
        with pytest.raises(RunNotFound):
            store.get_artifact(missing, "a/b.txt")

    def test_artifacts_belong_to_one_run(self, store: Store) -> None:
        a, b = _run(store), _run(store)
        store.log_artifacts(a.run_id, [ArtifactInfo("f", SHA_A, 1, 1)])
        store.log_artifacts(b.run_id, [ArtifactInfo("f", SHA_B, 2, 2)])
        assert store.get_artifact(a.run_id, "f").sha256 == SHA_A
        assert store.get_artifact(b.run_id, "f").sha256 == SHA_B
        store.delete_run(b.run_id)
        assert store.list_artifacts(a.run_id) == [ArtifactInfo("f", SHA_A, 1, 1)]
