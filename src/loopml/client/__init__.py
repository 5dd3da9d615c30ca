"""The explicit API: :class:`Client` composes a metadata store, an artifact store and the metric
buffer, and does everything by run id. The fluent ``loopml.start_run()`` layer is built on it."""

from __future__ import annotations

from loopml.client.client import Client as Client
from loopml.client.compare import RunComparison as RunComparison
from loopml.client.environment import capture_environment as capture_environment
from loopml.client.environment import set_seed as set_seed

__all__ = ["Client", "RunComparison", "capture_environment", "set_seed"]
