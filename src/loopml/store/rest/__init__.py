"""The REST store: the :class:`~loopml.store.Store` contract and the artifact store over HTTP, to
``loopml server`` (``open_store("http://host:5000")``)."""

from __future__ import annotations

from loopml.store.rest.artifacts import HttpArtifactStore as HttpArtifactStore
from loopml.store.rest.store import RestStore as RestStore

__all__ = ["HttpArtifactStore", "RestStore"]
