"""Test helpers for loopml and its plugins: conformance suites that any backend can run.

Each suite is a plain class of pytest test methods that take one fixture (``artifact_store`` for
:class:`~loopml.testing.artifact_suite.ArtifactStoreSuite`, ``store`` for
:class:`~loopml.testing.store_suite.StoreSuite`); subclass it in a test module and
define the fixture to run the whole contract against a backend. Import the suite modules directly:
this package imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.testing.artifact_suite import ArtifactStoreSuite as ArtifactStoreSuite
    from loopml.testing.store_suite import StoreSuite as StoreSuite
    from loopml.testing.store_suite_model import check_against_reference as check_against_reference

__all__ = ["ArtifactStoreSuite", "StoreSuite", "check_against_reference"]

_LAZY = {
    "ArtifactStoreSuite": "loopml.testing.artifact_suite",
    "StoreSuite": "loopml.testing.store_suite",
    "check_against_reference": "loopml.testing.store_suite_model",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that importing this package does not import pytest.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
