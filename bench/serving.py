#!/usr/bin/env python3
"""The serving benchmark (issue 5, "Performance"): ``loopml serve`` beside ``mlflow models
serve`` 3.x, same models, same payload, same load generator, in one invocation.

    python bench/serving.py             # full run: 20 s per level, 2 reps
    python bench/serving.py --quick     # smoke test: 4 s per level, 1 rep, LR only

Steps: (1) ``bench/.venv-mlflow`` (created if missing); (2) in a fresh store each, train the
anchors' ``lr`` (StandardScaler + LogisticRegression) and ``rf`` (50 trees) on breast_cancer,
register them, alias ``champion`` (``bench/models_loopml.py setup``, ``bench/peers/
mlflow_models.py setup``); (3) the floor: the model's own ``predict`` on one NumPy row, in
process; (4) each server in turn on 127.0.0.1 with one worker process, its start-up to the first
200, then ``wrk -t1`` (the anchors' ``post.lua``) POSTing the same one-row ``dataframe_split``
body to ``/invocations`` at concurrency 1, 8 and 32 (a discarded 3 s warm-up per level);
loopml runs as shipped (batching on, prediction log on, access log on) and with batching off
and with the prediction log off; (5) the table with the issue's targets, written to
``bench/results/serving-<stamp>.md`` (+ ``.jsonl``) and ``serving-latest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import ensure_mlflow_venv, git_state

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LUA = BENCH / "post.lua"
CONCS = (1, 8, 32)


def say(msg: str) -> None:
    print(f"[serving-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def append(raw: Path, rec: dict) -> None:
    with open(raw, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "MLFLOW_"))}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def wait_ready(url: str, body: bytes, proc: subprocess.Popen, timeout: float = 120.0) -> float:
    """Seconds until the first 200 from POST url (the server was started just before)."""
    import urllib.request

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            req = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no 200 from {url} in {timeout:g} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGINT (graceful) to the process group, then SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def rss_mib(pid: int) -> float | None:
    """Resident high-water mark of a process and its children (MiB)."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(
            ["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True
        ).stdout
        pids += [int(p) for p in out.split()]
        for p in pids:
            text = Path(f"/proc/{p}/status").read_text()
            m = re.search(r"VmHWM:\s+(\d+) kB", text)
            if m:
                total += int(m.group(1))
    except OSError:
        return None
    return total / 1024


def wrk(url: str, payload: Path, conc: int, seconds: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            url,
            "--",
            str(payload),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    return json.loads(line[len("WRKJSON ") :])


def drive(
    label: str, url: str, payload: Path, a: argparse.Namespace, raw: Path, extra: dict
) -> list[dict]:
    recs = []
    for conc in CONCS:
        wrk(url, payload, conc, 3)  # warm-up, discarded
        for rep in range(1, a.reps + 1):
            r = wrk(url, payload, conc, a.seconds)
            r.update(label=label, concurrency=conc, rep=rep, loadavg1=os.getloadavg()[0], **extra)
            append(raw, r)
            recs.append(r)
            errors = r["err_status"] + r["err_connect"] + r["err_read"] + r["err_timeout"]
            say(
                f"{label} c={conc} rep {rep}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                f"p99 {r['p99_ms']:.2f} ms, errors {errors}"
            )
    return recs


def serve_and_drive(
    label: str,
    cmd: list[str],
    env: dict,
    cwd: Path,
    port: int,
    payload: Path,
    a: argparse.Namespace,
    raw: Path,
    log: Path,
    extra: dict,
) -> dict:
    url = f"http://127.0.0.1:{port}/invocations"
    with open(log, "ab") as lf:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=lf, stderr=lf, start_new_session=True
        )
    try:
        startup = wait_ready(url, payload.read_bytes(), proc)
        say(f"{label}: first 200 after {startup:.2f} s")
        recs = drive(label, url, payload, a, raw, extra)
        rss = rss_mib(proc.pid)
    finally:
        stop(proc)
    rec = {"label": label, "key": "server", "startup_s": startup, "rss_mib": rss, **extra}
    append(raw, rec)
    return {"startup_s": startup, "rss_mib": rss, "recs": recs}


def floor(lpy: str, store: Path, raw: Path) -> dict:
    code = r"""
import json, time, numpy as np, loopml, warnings
warnings.filterwarnings("ignore")
out = {}
for m in ("lr", "rf"):
    p = loopml.load_model(f"models:/bench-{m}@champion", client=loopml.Client(STORE))
    est = p.native
    row = np.asarray(p.input_example.iloc[[0]], dtype=float)
    frame = p.input_example.iloc[[0]]
    for name, x in (("numpy", row), ("frame", frame)):
        for _ in range(50):
            est.predict(x)
        ts = []
        for _ in range(1000 if m == "lr" else 200):
            t0 = time.perf_counter(); est.predict(x); ts.append(time.perf_counter() - t0)
        ts.sort()
        out[f"{m}_{name}_ms"] = ts[len(ts) // 2] * 1e3
print(json.dumps(out))
""".replace("STORE", repr(str(store)))
    res = subprocess.run(
        [lpy, "-c", code], check=False, capture_output=True, text=True, env=base_env()
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    append(raw, {"key": "floor", **rec})
    return rec


def med(recs: list[dict], label: str, conc: int, key: str) -> float | None:
    vals = [r[key] for r in recs if r["label"] == label and r["concurrency"] == conc]
    return statistics.median(vals) if vals else None


def report(results: dict, fl: dict, meta: dict) -> str:
    recs = [r for res in results.values() for r in res["recs"]]
    lines = [
        f"# Serving benchmark: loopml vs MLflow ({meta['stamp']})",
        "",
        f"`{meta['cmd']}` on {meta['cpus']} CPUs ({meta['platform']}); loopml {meta['git']}; "
        f"MLflow {meta.get('mlflow', '?')}. One worker process per server; `wrk -t1` on the same "
        f"box, one-row `dataframe_split` POSTs to `/invocations`, {meta['seconds']} s per level, "
        f"median of {meta['reps']} rep(s) after a 3 s warm-up. wrk's p99 is corrected for "
        "coordinated omission (pessimistic when a server stalls).",
        "",
        f"Floor (the model's own `predict`, in process, median): LR {fl['lr_numpy_ms']:.3f} ms on "
        f"a NumPy row, {fl['lr_frame_ms']:.3f} ms on a one-row DataFrame; RF-50 "
        f"{fl['rf_numpy_ms']:.3f} / {fl['rf_frame_ms']:.3f} ms.",
        "",
        "| server | c | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for label in results:
        for c in CONCS:
            rps = med(recs, label, c, "rps")
            if rps is None:
                continue
            err = sum(
                r["err_status"] + r["err_connect"] + r["err_read"] + r["err_timeout"]
                for r in recs
                if r["label"] == label and r["concurrency"] == c
            )
            lines.append(
                f"| {label} | {c} | {rps:,.0f} | {med(recs, label, c, 'p50_ms'):.2f} | "
                f"{med(recs, label, c, 'p99_ms'):.2f} | {err} |"
            )
    lines += ["", "| server | start-up to first 200 | RSS (MiB) |", "|---|---|---|"]
    for label, res in results.items():
        rss = res["rss_mib"]
        lines.append(
            f"| {label} | {res['startup_s']:.2f} s | {'?' if rss is None else f'{rss:.0f}'} |"
        )
    lines += [
        "",
        "## Targets (issue 5)",
        "",
        "| target | figures | ratio | |",
        "|---|---|---|---|",
    ]

    def row(
        what: str, figs: str, ratio: float | None, ok: bool | None, fmt: str = "{:.1f}x"
    ) -> None:
        r = "-" if ratio is None else fmt.format(ratio)
        verdict = "" if ok is None else ("pass" if ok else "FAIL")
        lines.append(f"| {what} | {figs} | {r} | {verdict} |")

    ml, lo = "mlflow lr", "loopml lr"
    if ml in results and lo in results:
        for c in (8, 32):
            a_, b_ = med(recs, lo, c, "rps"), med(recs, ml, c, "rps")
            if a_ and b_:
                row(
                    f"throughput at c={c} >= 10x MLflow",
                    f"{a_:,.0f} vs {b_:,.0f} req/s",
                    a_ / b_,
                    a_ / b_ >= 10,
                )
        for c in CONCS:
            a_, b_ = med(recs, lo, c, "p99_ms"), med(recs, ml, c, "p99_ms")
            if a_ and b_:
                row(
                    f"p99 at c={c} <= 1/5 of MLflow's",
                    f"{a_:.2f} vs {b_:.2f} ms",
                    b_ / a_,
                    a_ <= b_ / 5,
                    "1/{:.1f}",
                )
    if lo in results:
        p50 = med(recs, lo, 1, "p50_ms")
        if p50 is not None:
            added = p50 - fl["lr_numpy_ms"]
            row(
                "added latency at c=1 (p50 - NumPy floor) < 1 ms",
                f"{p50:.3f} - {fl['lr_numpy_ms']:.3f} = {added:.3f} ms",
                None,
                added < 1.0,
            )
    off, nolog = "loopml lr, batching off", "loopml lr, prediction log off"
    if lo in results and off in results:
        for c in (8, 32):
            a_, b_ = med(recs, lo, c, "rps"), med(recs, off, c, "rps")
            if a_ and b_:
                row(
                    f"batching on vs off, throughput at c={c} >= 2x",
                    f"{a_:,.0f} vs {b_:,.0f}",
                    a_ / b_,
                    a_ / b_ >= 2,
                )
        a_, b_ = med(recs, lo, 1, "p99_ms"), med(recs, off, 1, "p99_ms")
        if a_ and b_:
            row(
                "batching on: p99 at c=1 not worse than off (10 % noise band)",
                f"{a_:.2f} vs {b_:.2f} ms",
                a_ / b_,
                a_ <= b_ * 1.10,
                "{:.2f}x",
            )
    if lo in results and nolog in results:
        for c in (8, 32):
            a_, b_ = med(recs, lo, c, "rps"), med(recs, nolog, c, "rps")
            if a_ and b_:
                cost = 1 - a_ / b_
                row(
                    f"prediction log on costs < 10 % of throughput (c={c})",
                    f"{a_:,.0f} on vs {b_:,.0f} off",
                    cost,
                    cost < 0.10,
                    "{:.1%}",
                )
    lines += [
        "",
        "BentoML 1.4.40 anchors (not this run; `shared/bench/RESULTS.md`): LR 697 / 566 "
        "/ 496 req/s at c=1 / 8 / 32; RF-50 320 / 289 / 268.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None, help="reps (loopml: rounds of variants)")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--models", default=None, help="comma-separated: lr,rf")
    a = ap.parse_args()
    a.seconds = a.seconds or (4 if a.quick else 12)
    a.reps = a.reps or (1 if a.quick else 3)
    models = (a.models or ("lr" if a.quick else "lr,rf")).split(",")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    work = BENCH / ".work" / f"serving-{stamp}"
    work.mkdir(parents=True)
    results_dir = BENCH / ("results" if not a.quick else ".work/results")
    results_dir.mkdir(parents=True, exist_ok=True)
    raw = results_dir / f"serving-{stamp}.jsonl"
    log = work / "servers.log"
    lpy = str(REPO / ".venv" / "bin" / "python")
    lcli = str(REPO / ".venv" / "bin" / "loopml")
    meta = {
        "stamp": stamp,
        "cmd": "python bench/serving.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "git": git_state(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "seconds": a.seconds,
        "reps": a.reps,
    }
    ldir, mdir = work / "loopml", work / "mlflow"
    ldir.mkdir()
    mdir.mkdir()
    lenv = dict(base_env(), LOOPML_HOME=str(ldir / ".loopml"))
    lpay, mpay = ldir / "row.json", mdir / "row.json"
    say("setup: train, log and register lr and rf in loopml")
    subprocess.run(
        [lpy, str(BENCH / "models_loopml.py"), "setup", "--payload", str(lpay), "--out", str(raw)],
        env=lenv,
        cwd=ldir,
        check=True,
    )
    body = {"dataframe_split": json.loads(lpay.read_text())}
    payload = work / "payload.json"
    payload.write_text(json.dumps(body))
    mpy = None
    menv = dict(
        base_env(),
        MLFLOW_TRACKING_URI=f"sqlite:///{mdir / 'mlflow.db'}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    if not a.skip_mlflow:
        mpy = ensure_mlflow_venv()
        # `mlflow models serve` runs `bash -c "exec uvicorn ..."`: its venv must be on PATH
        menv["PATH"] = f"{Path(mpy).parent}{os.pathsep}{menv.get('PATH', '')}"
        say("setup: the same in MLflow")
        subprocess.run(
            [
                mpy,
                str(BENCH / "peers" / "mlflow_models.py"),
                "setup",
                "--store",
                str(mdir),
                "--payload",
                str(mpay),
                "--out",
                str(raw),
            ],
            env=menv,
            cwd=mdir,
            check=True,
        )
        meta["mlflow"] = subprocess.run(
            [mpy, "-c", "import mlflow; print(mlflow.__version__)"],
            check=False,
            capture_output=True,
            text=True,
            env=menv,
        ).stdout.strip()
    append(raw, {"key": "meta", **meta})
    fl = floor(lpy, ldir / ".loopml", raw)
    say(f"floor: {fl}")
    results: dict[str, dict] = {}
    for m in models:
        if mpy is not None:
            port = free_port()
            mlflow_bin = str(Path(mpy).parent / "mlflow")
            results[f"mlflow {m}"] = serve_and_drive(
                f"mlflow {m}",
                [
                    mlflow_bin,
                    "models",
                    "serve",
                    "-m",
                    f"models:/bench-{m}@champion",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-w",
                    "1",
                ],
                menv,
                mdir,
                port,
                payload,
                a,
                raw,
                log,
                {"tool": "mlflow", "model": m},
            )
        variants = [("", [])]
        if m == "lr":
            variants += [
                (", batching off", ["--no-batching"]),
                (", prediction log off", ["--no-prediction-log"]),
            ]
        # The variants alternate, one rep each per round, so that the box's load (which moves
        # by 2x over minutes here) hits them alike: the on/off ratios compare like with like.
        one = argparse.Namespace(**{**vars(a), "reps": 1})
        for rnd in range(1, a.reps + 1):
            for suffix, flags in variants:
                port = free_port()
                label = f"loopml {m}{suffix}"
                res = serve_and_drive(
                    label,
                    [
                        lcli,
                        "serve",
                        f"models:/bench-{m}@champion",
                        "--port",
                        str(port),
                        "--name",
                        f"bench-{m}",
                        *flags,
                    ],
                    lenv,
                    ldir,
                    port,
                    payload,
                    one,
                    raw,
                    log,
                    {"tool": "loopml", "model": m, "round": rnd},
                )
                if label in results:
                    results[label]["recs"].extend(res["recs"])
                else:
                    results[label] = res
    text = report(results, fl, meta)
    out = results_dir / f"serving-{stamp}.md"
    out.write_text(text)
    if not a.quick:
        (results_dir / "serving-latest.md").write_text(text)
    print(text)
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
