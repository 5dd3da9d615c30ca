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
    from loopml.testing.store_suite import StoreSuite as StoreSuite

__all__ = ["StoreSuite"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing this package does not import pytest.
    if name == "StoreSuite":
        from loopml.testing.store_suite import StoreSuite

        return StoreSuite
    raise AttributeError(f"module 'loopml.testing' has no attribute {name!r}")
