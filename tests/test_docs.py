"""The documentation runs: every ```python block of ``docs/*.md`` and ``README.md``.

Each Markdown file's blocks run in order, in one fresh interpreter, with a shared namespace (a
later block may use what an earlier one defined), in an empty temporary folder that is also
``LOOPML_HOME``, ``LOOPML_TRACKING_URI`` and ``TMPDIR``: examples write nowhere else. Two HTML
comments, each on the line right before a fence, steer it:

* ``<!-- no-test -->`` before a ```python fence: the block is not run (a PostgreSQL URL, S3).
* ``<!-- output -->`` before a ```text fence: the block is the expected stdout of the nearest
  python block above it. ``...`` matches anything, as in doctest's ELLIPSIS; trailing spaces are
  ignored. Use it for output that appears in the docs, so that it stays true.

A failing block is reported with its file and line; tracebacks point into the Markdown file.
All files run at once (they are independent), so the suite costs about its slowest file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
NO_TEST = "<!-- no-test -->"
OUTPUT = "<!-- output -->"
TIMEOUT = 120  # seconds per file; the slowest file takes a few

# Blocks that may not run, as ("file name", index of the python block in the file): reason.
# Only for blocks whose owner must fix them (mark your own blocks with <!-- no-test --> instead).
SKIP: dict[tuple[str, int], str] = {}

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
# Printed by the runner before each block, on a line of its own even after print(..., end="").
_MARKER = "\n--loopml-docs-block-{}--"
_SPLIT = re.compile(r"\n--loopml-docs-block-\d+--\n")


@dataclass
class Block:
    """One ```python block, with what it should print (if the docs show it)."""

    line: int  # 1-based line of the first code line in the Markdown file
    code: str
    run: bool = True
    expected: str | None = None


def parse(text: str, name: str = "<doc>") -> list[Block]:
    """The python blocks of a Markdown text, each with its expected output if one follows."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, info = len(m["indent"]), m["fence"], m["info"].lower()
        marker = lines[i - 1].strip() if i > 0 else ""
        close = re.compile(rf"^ *{fence[0]}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            j += 1
        if j == len(lines):
            raise ValueError(f"{name}:{i + 1}: a code fence is never closed")
        content = "\n".join(body) + "\n"
        if info == "python":
            blocks.append(Block(i + 2, content, run=marker != NO_TEST))
        elif marker == OUTPUT:
            if not blocks or not blocks[-1].run:
                raise ValueError(f"{name}:{i + 1}: {OUTPUT} follows no python block that runs")
            if blocks[-1].expected is not None:
                raise ValueError(f"{name}:{i + 1}: a second {OUTPUT} for one python block")
            blocks[-1].expected = content
        elif marker == NO_TEST:
            raise ValueError(f"{name}:{i + 1}: {NO_TEST} marks a {info or 'plain'} block")
        i = j + 1
    return blocks


# The program that runs one file's blocks: in __main__'s namespace (so that pickling and
# `if __name__ == "__main__"` behave as in a script), each compiled at its line in the .md file.
_RUNNER = """
import json as _json, sys as _sys
with open(_sys.argv[1], encoding="utf-8") as _f:
    _blocks = _json.load(_f)
for _i, (_line, _code) in enumerate(_blocks["blocks"]):
    print(_blocks["marker"].format(_i), flush=True)
    exec(compile("\\n" * (_line - 1) + _code, _blocks["file"], "exec"), globals())
    _sys.stdout.flush()
"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    home = tmp / ".loopml"
    env.update(
        LOOPML_HOME=str(home),
        LOOPML_TRACKING_URI=f"sqlite:///{home / 'loopml.db'}",
        TMPDIR=str(tmp),
        MPLBACKEND="Agg",
        COLUMNS="100",
    )
    return env


def _label(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _to_run(path: Path, blocks: list[Block]) -> list[Block]:
    return [b for k, b in enumerate(blocks) if b.run and (path.name, k) not in SKIP]


@dataclass
class Started:
    """One file's examples, running (or why they could not start)."""

    blocks: list[Block]
    proc: subprocess.Popen[str] | None = None
    error: Exception | None = None


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, Started]]:
    """Start every file's interpreter at once; each test then waits for its own."""
    out: dict[Path, Started] = {}
    for path in DOC_FILES:
        try:
            blocks = _to_run(path, parse(path.read_text(encoding="utf-8"), _label(path)))
        except ValueError as exc:
            out[path] = Started([], error=exc)
            continue
        out[path] = Started(blocks)
        if not blocks:
            continue
        payload = {
            "file": str(path),
            "marker": _MARKER,
            "blocks": [(b.line, b.code) for b in blocks],
        }
        script = tmp_path_factory.mktemp(f"{path.stem}-blocks") / "blocks.json"
        script.write_text(json.dumps(payload), encoding="utf-8")
        tmp = tmp_path_factory.mktemp(path.stem)
        proc = subprocess.Popen(
            [sys.executable, "-c", _RUNNER, str(script)],
            cwd=tmp,
            env=_env(tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out[path].proc = proc
    yield out
    for s in out.values():
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.communicate()


@pytest.mark.parametrize("path", DOC_FILES, ids=_label)
def test_examples_run(path: Path, started: dict[Path, Started]) -> None:
    run = started[path]
    if run.error is not None:
        pytest.fail(str(run.error), pytrace=False)
    if run.proc is None:
        pytest.skip(f"{_label(path)} has no python block to run")
    try:
        stdout, stderr = run.proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.communicate()
        pytest.fail(f"{_label(path)}: the examples did not finish in {TIMEOUT} s", pytrace=False)
    # One chunk of stdout per block that started (nothing is printed before the first marker).
    chunks = _SPLIT.split(stdout)[1:]
    if run.proc.returncode != 0:
        failed = run.blocks[max(len(chunks) - 1, 0)]
        pytest.fail(
            f"{_label(path)}: the block at line {failed.line} failed "
            f"(exit status {run.proc.returncode}):\n{stderr[-5000:]}",
            pytrace=False,
        )
    assert len(chunks) == len(run.blocks), stdout
    for block, printed in zip(run.blocks, chunks, strict=True):
        if block.expected is not None:
            _check_output(path, block, printed)


def _matches(want: str, got: str) -> bool:
    """Whether ``got`` is ``want`` with each ``...`` standing for any text (doctest ELLIPSIS)."""
    pattern = ".*?".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got, flags=re.S) is not None


def _check_output(path: Path, block: Block, printed: str) -> None:
    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    want, got = norm(block.expected or ""), norm(printed)
    if not _matches(want, got):
        pytest.fail(
            f"{_label(path)}: the block at line {block.line} printed\n{got}\n\n"
            f"but the docs show\n{want}",
            pytrace=False,
        )


# --- the parser itself ---------------------------------------------------------------------


def test_parse_blocks_markers_and_outputs() -> None:
    text = "\n".join(
        [
            "# Title",  # 1
            "```python",  # 2
            "x = 1",  # 3
            "print(x)",  # 4
            "```",  # 5
            "",  # 6
            "<!-- output -->",  # 7
            "```text",  # 8
            "1",  # 9
            "```",  # 10
            "<!-- no-test -->",  # 11
            "```python",  # 12
            "Client('postgresql://db')",  # 13
            "```",  # 14
            "- a list item:",  # 15
            "",  # 16
            "  ````python",  # 17
            "  if x:",  # 18
            "      y = 2",  # 19
            "  ````",  # 20
            "```bash",  # 21
            "make test",  # 22
            "```",  # 23
        ]
    )
    blocks = parse(text)
    assert [(b.line, b.run, b.expected) for b in blocks] == [
        (3, True, "1\n"),
        (13, False, None),
        (18, True, None),
    ]
    assert blocks[2].code == "if x:\n    y = 2\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```python\nx = 1\n", "never closed"),
        ("<!-- output -->\n```text\n1\n```\n", "follows no python block"),
        ("<!-- no-test -->\n```bash\nls\n```\n", "marks a bash block"),
        (
            "```python\nprint(1)\n```\n<!-- output -->\n```text\n1\n```\n"
            "<!-- output -->\n```text\n1\n```\n",
            "a second",
        ),
    ],
)
def test_parse_refuses_misplaced_markers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_output_matching_allows_ellipsis() -> None:
    block = Block(1, "", expected="sqlite:///.../loopml.db\n[1, 2]\n")
    _check_output(ROOT / "README.md", block, "sqlite:////tmp/x/.loopml/loopml.db\n[1, 2]  \n")
    with pytest.raises(pytest.fail.Exception, match="the docs show"):
        _check_output(ROOT / "README.md", block, "sqlite:///x.db\n[1, 3]\n")


def test_every_setting_is_documented_and_no_other() -> None:
    from loopml.config import Settings
    from loopml.server.settings import ServerSettings

    settings = {f"LOOPML_{name.upper()}" for name in Settings.model_fields}
    settings |= {f"LOOPML_SERVER_{name.upper()}" for name in ServerSettings.model_fields}
    documented = set(
        re.findall(r"LOOPML_[A-Z0-9_]+", (ROOT / "docs/configuration.md").read_text())
    )
    assert sorted(settings - documented) == [], "settings missing from docs/configuration.md"
    for path in DOC_FILES:
        named = set(re.findall(r"LOOPML_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")))
        assert sorted(named - settings) == [], f"{_label(path)} names variables loopml never reads"


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    text = re.sub(r"^ *```.*?^ *```", "", path.read_text("utf-8"), flags=re.M | re.S)
    headings = re.findall(r"^#+ +(.+?) *$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_between_docs_resolve() -> None:
    broken = []
    for path in DOC_FILES:
        prose = re.sub(r"^ *```.*?^ *```", "", path.read_text("utf-8"), flags=re.M | re.S)
        prose = re.sub(r"`[^`\n]*`", "", prose)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", prose):
            if "://" in target or target.startswith("mailto:"):
                continue
            linked = (path.parent / target).resolve() if target else path
            if not linked.exists():
                broken.append(f"{_label(path)} -> {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{_label(path)} -> {target}#{anchor} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
