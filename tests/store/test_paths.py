"""Path confinement: a generated corpus of hostile artifact paths, good paths, symlinks out of the
root, and a property over arbitrary text."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import UnsafePath
from loopml.store.paths import MAX_PATH_LENGTH, confined_join, normalize_artifact_path

# Spellings of "..", "/" and "\" that some decoder down the line might turn into the real ones.
DOTDOTS = ["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%25252e%25252e", "%2e%252e"]
SEPARATORS = ["/", "%2f", "%2F", "%252f", "%25252f", "\\", "%5c", "%5C", "%255c"]


def _traversals() -> list[str]:
    out: list[str] = []
    for dots, sep in itertools.product(DOTDOTS, SEPARATORS):
        out += [
            dots,
            f"{dots}{sep}",
            f"{dots}{sep}x",
            f"x{sep}{dots}",
            f"x{sep}{dots}{sep}y",
            f"{dots}{sep}{dots}{sep}etc{sep}passwd",
            f"a{sep}b{sep}{dots}{sep}{dots}{sep}{dots}",
        ]
    # ".." in every position of a four-segment path, with "/" and "\" separators.
    for sep in ("/", "\\"):
        for i in range(4):
            parts = ["a", "b", "c", "d"]
            parts[i] = ".."
            out.append(sep.join(parts))
    return out


ABSOLUTE = [
    "/",
    "//",
    "/abs",
    "//x",
    "///etc/passwd",
    "/a/b/c",
    "/./a",
    "%2f",
    "%2fetc/passwd",
    "%2Fetc",
    "%252fetc",
    "~",
    "~/x",
    "~root/.ssh/id_rsa",
    "%7e/x",
    "C:\\x",
    "C:/x",
    "c:x",
    "D:",
    "z:/a/b",
    "%43:/x",
    "\\x",
    "\\\\server\\share\\x",
    "\\\\?\\C:\\x",
    "x:y",
    "./~",
    "./~/x",
    ".//~root",
    "./C:/x",
    "%2e/c:",
    "./%7e/x",
]

CONTROL = [
    "\x00",
    "a\x00b",
    "a.txt\x00.png",
    "%00",
    "a%00.txt",
    "a%2500.txt",
    "a\nb",
    "a\rb",
    "a\tb",
    "%0a",
    "a/%0d/b",
    "a\x1b[31m",
    "a\x7f",
    "%7f",
    "a\x85b",
    "a\x9fb",
    "a\u2028b",
    *[f"x{chr(c)}y" for c in range(0x20)],
]

EMPTY = ["", ".", "./", "/.", "./.", "././", ".//.", "%2e", "%2e/", "%2e%2f%2e", "//./"]

MIXED = [
    "a/./../b",
    "./../x",
    "a/b/c/../../../../etc",
    "..\\..\\windows\\win.ini",
    "a\\..\\..\\x",
    "..%2f..%2fetc/passwd",
    "..%5c..%5cx",
    "%2e%2e%5c",
    "%2e%2e/",
    "..%2f",
    "%252e%252e%252f",
    "%252e%252e%252fetc",
    "a/%2e%2e%2f%2e%2e/b",
    ".%2e/.%2e/x",
    "..;/x/..",
    "\\..\\",
    "/..",
    "~/../x",
    "x/../../..",
    "%" + "25" * 8 + "2e%2e/x",  # encoded too many times to decode safely
    "a" * (MAX_PATH_LENGTH + 1),
    "a/" * (MAX_PATH_LENGTH // 2 + 1),
]

BAD_PATHS = sorted(set(_traversals() + ABSOLUTE + CONTROL + EMPTY + MIXED))

GOOD_PATHS = {
    "plots/roc.png": "plots/roc.png",
    "a//b/./c": "a/b/c",
    "./a": "a",
    "a/b/": "a/b",
    "a/./b/.": "a/b",
    "model.pkl": "model.pkl",
    "...": "...",
    "a..b": "a..b",
    "..a/b..": "..a/b..",
    ".hidden/.x": ".hidden/.x",
    "file%20name.txt": "file name.txt",
    "dir/%2e/x": "dir/x",
    "a~/b": "a~/b",
    "résumé/データ.csv": "résumé/データ.csv",
    "a" * MAX_PATH_LENGTH: "a" * MAX_PATH_LENGTH,
}


def test_the_corpus_is_large() -> None:
    assert len(BAD_PATHS) > 500


@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_bad_paths_are_refused(path: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        normalize_artifact_path(path)
    with pytest.raises(UnsafePath):
        confined_join(tmp_path, path)


@pytest.mark.parametrize("value", [None, 1, b"a/b", ["a"], Path("/abs"), Path("..")])
def test_non_strings_and_bad_pathlikes_are_refused(value: object) -> None:
    with pytest.raises(UnsafePath):
        normalize_artifact_path(value)


@pytest.mark.parametrize(("path", "expected"), sorted(GOOD_PATHS.items()))
def test_good_paths_normalise(path: str, expected: str, tmp_path: Path) -> None:
    assert normalize_artifact_path(path) == expected
    assert normalize_artifact_path(expected) == expected
    assert confined_join(tmp_path, path) == tmp_path.resolve() / expected


def test_pathlike_is_accepted() -> None:
    assert normalize_artifact_path(Path("a") / "b.txt") == "a/b.txt"


def test_refusal_names_the_path_and_what_to_do() -> None:
    with pytest.raises(UnsafePath, match=r"'\.\./x'.*relative path") as info:
        normalize_artifact_path("../x")
    assert info.value.code == "UNSAFE_PATH" and info.value.http_status == 400


# -- symlinks ---------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s3cr3t")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file.txt").write_text("ok")
    return root


def test_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "rel-out").symlink_to(Path("..") / "outside")
    (root / "secret-link").symlink_to(tmp_path / "outside" / "secret")
    (root / "dangling").symlink_to(tmp_path / "outside" / "not-yet")
    (root / "chain").symlink_to(root / "out")
    for path in ["out", "out/secret", "rel-out/secret", "secret-link", "dangling", "chain/x"]:
        with pytest.raises(UnsafePath, match="resolves outside"):
            confined_join(root, path)


def test_symlink_inside_the_root_and_normal_files_are_accepted(root: Path) -> None:
    (root / "alias").symlink_to(root / "sub")
    resolved = root.resolve()
    assert confined_join(root, "sub/file.txt") == resolved / "sub" / "file.txt"
    assert confined_join(root, "alias/file.txt") == resolved / "sub" / "file.txt"
    assert confined_join(root, "new/not/yet/there.bin") == resolved / "new/not/yet/there.bin"
    assert confined_join(str(root), "sub") == resolved / "sub"


def test_root_that_is_itself_a_symlink_works(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)
    assert confined_join(tmp_path / "root-link", "sub/file.txt").read_text() == "ok"


# -- property ---------------------------------------------------------------------------------

_INTERESTING = st.sampled_from(
    [".", "..", "/", "\\", "%", "2e", "2f", "5c", "25", "%2e", "%2f", "~", ":", "C", "a", "\x00"]
)
_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(_INTERESTING, max_size=20).map("".join),
    st.text(alphabet="./\\%25ef~:ab", max_size=40),
)


@pytest.fixture(scope="module")
def property_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property-root")


@settings(
    max_examples=1500,
    deadline=None,
    database=None,
)
@given(text=_TEXT)
def test_any_text_is_refused_or_confined(text: str, property_root: Path) -> None:
    try:
        normalized = normalize_artifact_path(text)
    except UnsafePath:
        return
    parts = normalized.split("/")
    assert ".." not in parts and "." not in parts and "" not in parts
    assert not normalized.startswith(("/", "~")) and "\\" not in normalized
    assert re.match(r"[A-Za-z]:", normalized) is None
    assert not os.path.isabs(normalized)
    assert normalize_artifact_path(normalized) == normalized
    target = confined_join(property_root, text)
    base = property_root.resolve()
    assert target == base / normalized
    assert base in target.parents
