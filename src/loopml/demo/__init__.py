"""``loopml demo``: the whole lifecycle on real data (every 2013 departure from New York and
its weather), end to end: ingest and validate, train and tune as a pipeline, gate and promote,
serve over HTTP, replay May onward as live traffic with late labels, detect the summer drift
and the accuracy drop, retrain, gate, canary and promote through the loop, and summarise.

Start with :func:`run_demo` (or ``loopml demo``). Nothing heavy loads until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.demo.main import DemoOptions as DemoOptions
    from loopml.demo.main import DemoResult as DemoResult
    from loopml.demo.main import run_demo as run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'loopml.demo' has no attribute {name!r}")
    from loopml.demo import main

    value = getattr(main, name)
    globals()[name] = value
    return value
