"""``loopml data``: version datasets, inspect them, and validate, profile, compare and check data.

Commands that read data take a logged version (``datasets:/churn/3``, ``datasets:/churn@latest``)
or a local file (CSV, TSV, Parquet, JSON lines); a file needs no store. ``validate``, ``profile``,
``diff`` and ``check`` also write a self-contained HTML report with ``--html FILE``. The commands
register on :data:`app` when their modules load: ``catalog`` (add, list, show, get) first,
then ``quality`` (validate, profile, diff, check).
"""

from __future__ import annotations

from loopml.cli.data import catalog as catalog
from loopml.cli.data import quality as quality
from loopml.cli.data._common import app as app

__all__ = ["app", "catalog", "quality"]
