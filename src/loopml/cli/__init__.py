"""The ``loopml`` command line: ``init`` a home, then list, show, compare and delete runs, list
and create projects, and inspect or upgrade the database schema (``loopml --help``). Commands go
through :class:`loopml.Client` (``db`` talks to the SQL store directly), print Rich tables for
people and ``--json`` for scripts, and report any :class:`~loopml.errors.LoopError` as one
``error:`` line with exit status 1. Heavy modules load inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Run the ``loopml`` command (the console-script entry point)."""
    import sys

    from loopml.errors import LoopError

    try:
        from loopml.cli.app import app

        app()
    except LoopError as exc:  # raised outside a command (the group turns the rest into Exit)
        from loopml.cli.output import fail

        code = fail(exc.message).exit_code
        sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)
