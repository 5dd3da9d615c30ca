"""One real image, end to end (slow): ``loopml build-image`` writes the context of a registered
scikit-learn model and podman builds it with no network; the container runs as a non-root user
and answers ``/ping`` and ``/predict`` exactly as the model does in this process.

No registry is reachable here, so the base image is made locally (debootstrap, as in
docs/images.md) the first time and kept in podman's store. podman runs with the vfs storage
driver, the runc runtime and a containers.conf that sets no ulimits and the cgroupfs manager,
which is what works inside this machine's sandbox. CI installs podman, buildah, runc and
debootstrap (.ci/run); elsewhere the test skips when podman is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.app import app
from loopml.models.loading import load_model
from loopml.models.package import log_model

pytestmark = pytest.mark.slow

BASE_IMAGE = "localhost/python-base:bookworm"
PODMAN = ["podman", "--storage-driver", "vfs"]
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\n'


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        reason = (
            f"{tool} is not installed; install it with "
            "`apt-get install -y podman buildah runc debootstrap` (.ci/run does this on CI)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _run(*cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap fetches from it)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _ensure_base_image(tmp: Path) -> None:
    """``localhost/python-base:bookworm``: Debian bookworm with python3, venv and pip, made
    with debootstrap and imported into podman's store once (about a minute), then reused."""
    if _run(*PODMAN, "image", "exists", BASE_IMAGE).returncode == 0:
        return
    _need("debootstrap")
    rootfs = tmp / "rootfs"
    made = _run(
        "debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip",
        "bookworm", str(rootfs), _mirror(),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):  # ~100 MB the image needs not
        for path in (rootfs / cache).glob("*"):
            if path.is_file():
                path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [*PODMAN, "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True, check=False
    )
    assert tar.stdout is not None
    tar.stdout.close()
    assert tar.wait() == 0 and imported.returncode == 0, imported.stderr[-3000:]
    shutil.rmtree(rootfs, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


@pytest.fixture
def podman_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """podman on PATH, this sandbox's containers.conf, the base image, and pip's usual cache
    (the test session moves XDG_CACHE_HOME to a temporary folder)."""
    _need("podman")
    conf = tmp_path / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    monkeypatch.setenv("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    _ensure_base_image(tmp_path)
    yield tmp_path


@pytest.mark.timeout(900)
def test_an_image_built_with_podman_serves_the_model_s_predictions(
    podman_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    monkeypatch.chdir(podman_env)
    for name in ("LOOPML_HOME", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACT_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("LOOPML_PROJECT", "default")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame[list(data.feature_names[:4])].rename(columns=lambda c: c.replace(" ", "_"))
    model = LogisticRegression(max_iter=1000).fit(frame, data.target)
    db = podman_env / "loopml.db"
    with loopml.Client(f"sqlite:///{db}") as client:
        log_model(model, input_example=frame.head(3), registered_model_name="churn", client=client)
        client.set_model_alias("churn", "champion", 1)
        expected = load_model("models:/churn@champion", client=client).predict(frame.head(20))

    tag = f"localhost/loopml-test-churn:{uuid.uuid4().hex[:8]}"
    name = f"loopml-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    started = time.monotonic()
    try:
        result = CliRunner().invoke(
            app,
            [
                "--store", str(db), "build-image", "models:/churn@champion", "-t", tag,
                "--base-image", BASE_IMAGE, "--tool", "podman", "--storage-driver", "vfs",
                "--context-dir", str(podman_env / "context"),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"built {tag}" in result.output
        built = time.monotonic() - started
        inspect = json.loads(_run(*PODMAN, "image", "inspect", tag).stdout)[0]
        assert inspect["Config"]["User"] == "10001:10001"
        assert inspect["Config"]["Labels"]["io.loopml.model.uri"] == "models:/churn/1"
        assert "/ping" in " ".join(inspect["Healthcheck"]["Test"])

        run = _run(
            *PODMAN, "--runtime", "runc", "run", "-d", "--name", name, "--network", "host",
            "--no-healthcheck", "-e", f"PORT={port}", tag,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    assert response.status == 200
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                state = _run(*PODMAN, "inspect", "--format", "{{.State.Running}}", name).stdout
                logs = _run(*PODMAN, "logs", name).stderr[-3000:]
                assert state.strip() == "true", f"the container stopped:\n{logs}"
                assert time.monotonic() < deadline, f"no answer on /ping in 120 s:\n{logs}"
                time.sleep(0.5)
        rows = json.loads(frame.head(20).to_json(orient="records"))
        answer = _post(f"{base}/predict", {"rows": rows})
        assert answer["predictions"] == np.asarray(expected).tolist()
        assert answer["model"] == "churn"
        who = _run(*PODMAN, "exec", name, "id", "-u").stdout.strip()
        assert who == "10001"
        print(f"image built in {built:.0f} s; serving after {time.monotonic() - started:.0f} s")
    finally:
        _run(*PODMAN, "stop", "-t", "10", name, timeout=60)
        _run(*PODMAN, "rm", "-f", name, timeout=60)
        _run(*PODMAN, "rmi", "-f", tag, timeout=120)  # ~1 GB with vfs; the base image stays
