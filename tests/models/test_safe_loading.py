"""Malicious and damaged model folders: nothing is deserialised, nothing runs, the error says why.

Each attack writes a marker file if its payload ever runs; every test asserts the marker never
appears.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from loopml.errors import ModelCorrupted, UnsafePath, UntrustedModel
from loopml.models import MANIFEST_FILE, PythonModel, load_model, save_model, verify_model
from loopml.models.manifest import Manifest, hash_folder, read_manifest


class Payload:
    """Unpickling this creates the marker file: what an attacker's pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


class Echo(PythonModel):
    def predict(self, context: Any, data: Any) -> Any:
        return data


class Custom(TransformerMixin, BaseEstimator):
    """A transformer of the user's own: skops cannot vouch for it."""

    def fit(self, X: Any, y: Any = None) -> Custom:
        return self

    def transform(self, X: Any) -> Any:
        return X


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture
def iris() -> tuple[Any, Any]:
    return load_iris(return_X_y=True)


def _sklearn_folder(tmp_path: Path, iris: Any) -> Path:
    X, y = iris
    folder = tmp_path / "model"
    save_model(LogisticRegression(max_iter=300).fit(X, y), folder, input_example=X[:3])
    return folder


def _rewrite_manifest(folder: Path, **changes: Any) -> None:
    """What an attacker who can write the folder does: new file hashes, edited fields."""
    manifest, _ = read_manifest(folder)
    data = manifest.to_dict()
    data["files"] = {
        p: {"sha256": e.sha256, "size": e.size} for p, e in hash_folder(folder).items()
    }
    for key, value in changes.items():
        if key == "options":
            data["flavor"]["options"].update(value)
        else:
            data[key] = value
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


def _crafted(folder: Path, flavor: str, payload: bytes, options: dict[str, Any]) -> Path:
    """A consistent folder (hashes match) whose model file is an attacker's pickle."""
    folder.mkdir()
    (folder / options["file"]).write_bytes(payload)
    Manifest(
        flavor=flavor, flavor_options=options, files=hash_folder(folder), requirements={}
    ).write(folder)
    return folder


# --- pickle-family flavors need trust ------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["pickle", "python", "torch"])
def test_code_carrying_flavors_are_refused_untrusted(
    tmp_path: Path, marker: Path, flavor: str
) -> None:
    options = {"file": "model.pkl", "format": "pickle"}
    folder = _crafted(tmp_path / "m", flavor, pickle.dumps(Payload(marker)), options)
    with pytest.raises(UntrustedModel) as info:
        load_model(folder)
    assert not marker.exists()
    assert "trusted=True" in str(info.value) and f"{str(folder)!r}" in str(info.value)
    assert info.value.http_status == 403


def test_trusted_pickle_loads_and_runs_what_it_holds(tmp_path: Path, marker: Path) -> None:
    folder = _crafted(tmp_path / "m", "pickle", pickle.dumps(Payload(marker)), {"file": "m.pkl"})
    with pytest.raises(Exception):  # noqa: B017 - the payload is a file object, not a model
        load_model(folder, trusted=True)
    assert marker.exists()  # trust means what it says: this is why the default is to refuse


def test_python_model_needs_trust(tmp_path: Path) -> None:
    save_model(Echo(), tmp_path / "m")
    with pytest.raises(UntrustedModel, match="python model"):
        load_model(tmp_path / "m")
    assert load_model(tmp_path / "m", trusted=True).predict([1, 2]) == [1, 2]


def test_a_pickle_claiming_to_be_sklearn_never_unpickles(tmp_path: Path, marker: Path) -> None:
    folder = _crafted(
        tmp_path / "m", "sklearn", pickle.dumps(Payload(marker)), {"file": "model.skops"}
    )
    with pytest.raises(ModelCorrupted, match="not a readable skops file"):
        load_model(folder)
    assert not marker.exists()


# --- tampering: nothing is deserialised ----------------------------------------------------------


def test_tampered_file_is_refused_even_when_trusted(tmp_path: Path, marker: Path) -> None:
    save_model(Echo(), tmp_path / "m")
    (tmp_path / "m" / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(ModelCorrupted) as info:
        load_model(tmp_path / "m", trusted=True)
    assert "'python_model.pkl'" in str(info.value) and "changed" in str(info.value)
    assert not marker.exists()


def test_one_flipped_byte_is_refused(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    data = bytearray((folder / "model.skops").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "model.skops").write_bytes(bytes(data))
    with pytest.raises(ModelCorrupted, match=r"'model\.skops'"):
        load_model(folder)
    with pytest.raises(ModelCorrupted):
        verify_model(folder)


def test_unlisted_and_missing_files_are_refused(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    (folder / "extra.py").write_text("import os")
    with pytest.raises(ModelCorrupted, match=r"does not list: 'extra\.py'"):
        load_model(folder)
    (folder / "extra.py").unlink()
    (folder / "input_example.json").unlink()
    with pytest.raises(ModelCorrupted, match=r"'input_example\.json' is listed .* missing"):
        load_model(folder)


def test_symlinks_and_hard_links_are_refused(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    os.symlink(secret, folder / "link.txt")
    with pytest.raises(UnsafePath, match="symlink"):
        load_model(folder)
    (folder / "link.txt").unlink()
    os.link(secret, folder / "hard.txt")
    with pytest.raises(UnsafePath, match="hard links"):
        load_model(folder)
    (folder / "hard.txt").unlink()
    model = folder / "model.skops"
    model.rename(tmp_path / "elsewhere.skops")
    os.symlink(tmp_path / "elsewhere.skops", model)  # the model file itself, swapped for a link
    with pytest.raises(UnsafePath):
        load_model(folder)


def test_manifest_digest_pins_the_folder(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    _, digest = read_manifest(folder)
    read_manifest(folder, expected_digest=digest)
    _rewrite_manifest(folder, metadata={"owner": "mallory"})
    with pytest.raises(ModelCorrupted, match="registry recorded"):
        read_manifest(folder, expected_digest=digest)


# --- the manifest is data: it never names code to import -----------------------------------------


def test_a_manifest_naming_a_module_is_refused(
    tmp_path: Path, marker: Path, iris: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil_flavor.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _sklearn_folder(tmp_path, iris)
    for name in ("evil_flavor", "evil_flavor.Flavor", "os.system", "loopml.models.flavors.base"):
        _rewrite_manifest(folder, flavor={"name": name, "options": {"file": "model.skops"}})
        with pytest.raises(ModelCorrupted, match="not one of loopml's"):
            load_model(folder)
    assert "evil_flavor" not in sys.modules and not marker.exists()


def test_unknown_manifest_fields_are_refused(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    _rewrite_manifest(folder, loader_module="evil_flavor")
    with pytest.raises(ModelCorrupted, match="unknown fields 'loader_module'"):
        load_model(folder)


def test_xgboost_class_names_come_from_a_fixed_table(tmp_path: Path, iris: Any) -> None:
    xgboost = pytest.importorskip("xgboost")
    X, y = iris
    folder = tmp_path / "m"
    save_model(xgboost.XGBClassifier(n_estimators=2).fit(X, y), folder)
    _rewrite_manifest(folder, options={"class": "core.Booster.__init__"})
    with pytest.raises(ModelCorrupted, match="not one loopml re-creates"):
        load_model(folder)


@pytest.mark.parametrize("name", ["../outside.skops", "/etc/passwd", "model.skops/../../x"])
def test_flavor_file_options_stay_in_the_folder(tmp_path: Path, iris: Any, name: str) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    (tmp_path / "outside.skops").write_bytes((folder / "model.skops").read_bytes())
    _rewrite_manifest(folder, options={"file": name})
    with pytest.raises(ModelCorrupted, match="unsafe file"):
        load_model(folder)


@pytest.mark.parametrize("path", ["../evil.pkl", "/abs.pkl", "a/../../b"])
def test_manifest_file_paths_must_be_canonical(tmp_path: Path, iris: Any, path: str) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][path] = {"sha256": "0" * 64, "size": 1}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelCorrupted, match="unsafe file path"):
        load_model(folder)


def test_a_newer_format_asks_to_upgrade(tmp_path: Path, iris: Any) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    _rewrite_manifest(folder, format_version=99)
    with pytest.raises(ModelCorrupted, match="upgrade loopml"):
        load_model(folder)


# --- skops: only the types approved at save time -------------------------------------------------


def test_skops_types_not_on_the_approved_list_are_refused(
    tmp_path: Path, iris: Any, marker: Path
) -> None:
    folder = _sklearn_folder(tmp_path, iris)
    approved = read_manifest(folder)[0].flavor_options["trusted_types"]
    hostile = make_pipeline(FunctionTransformer(os.system), LogisticRegression())
    sio.dump(hostile, folder / "model.skops")
    _rewrite_manifest(folder)  # new hashes, the approved list as it was
    with pytest.raises(UntrustedModel) as info:
        load_model(folder)
    assert "system" in str(info.value) and "not approved" in str(info.value)
    # An attacker who also approves the type meets the second check: not a sklearn type.
    found = sio.get_untrusted_types(file=folder / "model.skops")
    _rewrite_manifest(folder, options={"trusted_types": sorted({*approved, *found})})
    with pytest.raises(UntrustedModel, match="outside scikit-learn"):
        load_model(folder)
    assert not marker.exists()


def test_own_transformer_types_load_only_when_trusted(tmp_path: Path, iris: Any) -> None:
    X, y = iris
    model = make_pipeline(Custom(), LogisticRegression(max_iter=300)).fit(X, y)
    manifest = save_model(model, tmp_path / "m")
    assert any(t.endswith("Custom") for t in manifest.flavor_options["trusted_types"])
    with pytest.raises(UntrustedModel, match="Custom"):
        load_model(tmp_path / "m")
    p = load_model(tmp_path / "m", trusted=True)
    np.testing.assert_array_equal(p.predict(X), model.predict(X))


# --- ONNX: no external data ----------------------------------------------------------------------


def test_onnx_external_data_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [weight],
    )
    model = helper.make_model(graph)
    folder = tmp_path / "m"
    save_model(model, folder)
    assert load_model(folder).predict(np.ones((2, 1), np.float32)).tolist() == [[1.0], [1.0]]
    # Point the weight at a file outside the folder, as the ONNX traversal CVEs did.
    tensor = model.graph.initializer[0]
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    _rewrite_manifest(folder)
    with pytest.raises(ModelCorrupted, match="external data"):
        load_model(folder)
    with pytest.raises(Exception, match="external data"):
        save_model(model, tmp_path / "again")
    assert onnx is not None
