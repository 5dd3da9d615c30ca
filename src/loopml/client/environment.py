"""Capture where a run runs: git commit and dirty flag, Python, platform, packages, command, seed.

The slow parts (asking git, listing installed packages) run once per process and are cached; the
seed is read at every capture, so :func:`set_seed` before a run is recorded with it.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from functools import lru_cache
from types import MappingProxyType

from loopml.entities import Environment

__all__ = ["capture_environment", "get_seed", "set_seed"]

_seed: int | None = None


def set_seed(seed: int) -> int:
    """Seed Python's, NumPy's and (if imported) PyTorch's random generators, and record the seed
    with every run started afterwards in this process.

    Returns:
        The seed, so ``seed = loopml.set_seed(42)`` reads naturally.
    """
    global _seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        from loopml.errors import InvalidArgument

        raise InvalidArgument(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for child processes
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    _seed = seed
    return seed


def get_seed() -> int | None:
    """The seed set by :func:`set_seed` in this process, if any."""
    return _seed


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            ["git", *args],  # noqa: S607 - git from PATH is what the user runs too
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


@lru_cache(maxsize=1)
def _packages() -> MappingProxyType[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return MappingProxyType(dict(sorted(found.items())))


@lru_cache(maxsize=1)
def _static() -> tuple[str, str, tuple[str, ...]]:
    return platform.python_version(), platform.platform(), tuple(sys.argv)


def capture_environment(*, packages: bool = True) -> Environment:
    """The environment of this process now (git state and packages cached per process)."""
    return _capture(packages, _seed)


@lru_cache(maxsize=8)
def _capture(packages: bool, seed: int | None) -> Environment:
    python, plat, command = _static()
    commit, dirty = _git_state()
    return Environment(
        python_version=python,
        platform=plat,
        git_commit=commit,
        git_dirty=dirty,
        command=command,
        packages=_packages() if packages else MappingProxyType({}),
        seed=seed,
    )
