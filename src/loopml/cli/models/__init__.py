"""``loopml models``: the model registry from the command line: list, inspect and register model
versions, move aliases, promote through a release gate, roll back, and evaluate and compare models.

Commands that name one version take ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or
``models:/NAME/latest``; ``evaluate`` and ``compare`` also take ``runs:/RUN_ID/PATH`` or a model
folder. The commands register on :data:`app` when their modules load: ``catalog`` (list, show,
versions), ``register``, ``aliases`` (alias), ``release`` (promote, rollback), then ``quality``
(evaluate, compare). Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

# The modules register their commands in the order `loopml models --help` lists them.
# isort: off
from loopml.cli.models._common import app as app
from loopml.cli.models import catalog as catalog
from loopml.cli.models import register as register
from loopml.cli.models import aliases as aliases
from loopml.cli.models import release as release
from loopml.cli.models import quality as quality

# isort: on

__all__ = ["aliases", "app", "catalog", "quality", "register", "release"]
