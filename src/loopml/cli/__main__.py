"""``python -m loopml.cli``: the same as the ``loopml`` command."""

from __future__ import annotations

from loopml.cli import main

if __name__ == "__main__":
    main()
