"""Model archives: export and import round trip, and hostile tar files refused before anything is
written outside (or inside) the destination."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidArgument, ModelCorrupted, UnsafePath
from loopml.models import MANIFEST_FILE, export_model, import_model, load_model, save_model


@pytest.fixture
def model_folder(tmp_path: Path) -> tuple[Path, Any, Any]:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    folder = tmp_path / "model"
    save_model(model, folder, input_example=X[:3])
    return folder, model, X


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _everything_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_export_import_round_trip(tmp_path: Path, model_folder: Any) -> None:
    folder, model, X = model_folder
    archive = export_model(folder, tmp_path / "out" / "model.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(
            [MANIFEST_FILE, "model.skops", "input_example.json"]
        )
        assert all(m.mtime == 0 and m.isreg() for m in tar.getmembers())
    again = export_model(folder, tmp_path / "again.tar.gz")
    assert again.read_bytes() == archive.read_bytes()  # reproducible
    imported = import_model(archive, tmp_path / "imported")
    np.testing.assert_array_equal(load_model(imported).predict(X), model.predict(X))
    np.testing.assert_array_equal(load_model(archive).predict(X), model.predict(X))
    with pytest.raises(InvalidArgument, match="exists"):
        export_model(folder, archive)


def test_export_refuses_a_damaged_model(tmp_path: Path, model_folder: Any) -> None:
    folder, _, _ = model_folder
    (folder / "model.skops").write_bytes(b"not the model")
    with pytest.raises(ModelCorrupted):
        export_model(folder, tmp_path / "m.tar.gz")
    assert not (tmp_path / "m.tar.gz").exists()


@pytest.mark.parametrize(
    ("member", "error"),
    [
        (_file("../escaped.txt"), "'..'"),
        (_file("a/../../escaped.txt"), "'..'"),
        (_file("/tmp/escaped-absolute.txt"), "absolute"),
        (_file("C:/escaped.txt"), "absolute"),
        (_file("a\\..\\escaped.txt"), "backslash"),
        (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "symlink"),
        (_special("link", tarfile.SYMTYPE, "../outside"), "symlink"),
        (_special("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (_special("dev", tarfile.CHRTYPE), "device"),
        (_special("fifo", tarfile.FIFOTYPE), "device"),
    ],
)
def test_hostile_members_are_refused_before_anything_is_written(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], error: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(tmp_path / "evil.tar.gz", [_file("ok.txt"), member, _file("after.txt")])
    before = _everything_under(tmp_path)
    with pytest.raises(UnsafePath, match=error):
        import_model(archive, work / "dest")
    assert _everything_under(tmp_path) == before  # nothing extracted, nothing outside
    assert not (tmp_path / "escaped.txt").exists()


def test_symlink_then_write_through_it_is_refused(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "slip.tar.gz",
        [_special("dir", tarfile.SYMTYPE, str(tmp_path)), _file("dir/escaped.txt")],
    )
    with pytest.raises(UnsafePath, match="symlink"):
        import_model(archive, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "dest").exists()


def test_repeated_names_and_limits(tmp_path: Path) -> None:
    twice = _tar(tmp_path / "twice.tar.gz", [_file("a.txt"), _file("./a.txt", b"y")])
    with pytest.raises(UnsafePath, match="repeats"):
        import_model(twice, tmp_path / "d1")
    big = _tar(tmp_path / "big.tar.gz", [_file("a.bin", b"\0" * 10_000)])
    with pytest.raises(InvalidArgument, match="more than 1000 bytes"):
        import_model(big, tmp_path / "d2", max_bytes=1000)
    many = _tar(tmp_path / "many.tar.gz", [_file(f"f{i}") for i in range(20)])
    with pytest.raises(InvalidArgument, match="more than 10 entries"):
        import_model(many, tmp_path / "d3", max_members=10)
    assert not any((tmp_path / d).exists() for d in ("d1", "d2", "d3"))


def test_an_archive_that_is_not_a_model(tmp_path: Path) -> None:
    plain = _tar(tmp_path / "plain.tar.gz", [_file("notes.txt")])
    with pytest.raises(ModelCorrupted, match=r"no loopml-model\.json"):
        import_model(plain, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"definitely not gzip")
    with pytest.raises(InvalidArgument, match="not a readable tar"):
        import_model(junk, tmp_path / "dest")


def test_an_archive_of_a_wrapped_folder(tmp_path: Path, model_folder: Any) -> None:
    folder, model, X = model_folder
    archive = tmp_path / "wrapped.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="my-model")
    imported = import_model(archive, tmp_path / "dest")
    assert imported == tmp_path / "dest" / "my-model"
    np.testing.assert_array_equal(load_model(imported).predict(X), model.predict(X))


def test_import_checks_hashes_after_extraction(tmp_path: Path, model_folder: Any) -> None:
    folder, _, _ = model_folder
    (folder / "model.skops").write_bytes(b"swapped")
    archive = tmp_path / "tampered.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in folder.iterdir():
            tar.add(path, arcname=path.name)
    with pytest.raises(ModelCorrupted, match=r"'model\.skops'"):
        import_model(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
