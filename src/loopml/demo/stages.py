"""The demo's stages, each on loopml's public APIs (see :mod:`loopml.demo.main` for the order)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import loopml
from loopml.demo.data import FEATURES, TARGET, TIME
from loopml.demo.train import MODEL

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.demo.main import DemoOptions, DemoResult, _Stages
    from loopml.demo.replay import Replay
    from loopml.demo.serve import ServerProcess

__all__ = [
    "compare_stage",
    "ingest_stage",
    "replay_stage",
    "serve_stage",
    "train_stage",
]


def ingest_stage(
    stages: _Stages, client: Client, options: DemoOptions, result: DemoResult
) -> pd.DataFrame:
    """1. Load, clean, validate, version and check the flights."""
    from loopml.demo.data import ingest
    from loopml.demo.main import PROJECT

    with stages.stage(1, "ingest", "ingest and validate") as note:
        got = ingest(client, project=PROJECT, seed=options.seed)
        frame = got.frame
        warned = [k for k, v in got.checks.items() if v != "ok"]
        result.data = {
            "dataset": got.version.uri,
            "rows": got.version.num_rows,
            "flights_read": got.counts.flights,
            "cancelled_dropped": got.counts.cancelled,
            "weather_filled": got.counts.weather_filled,
            "contract_violations": got.violations,
            "checks": got.checks,
            "delay_rate_by_month": {
                int(str(m)): round(float(v), 4)
                for m, v in frame.groupby(frame[TIME].dt.month)[TARGET].mean().items()
            },
        }
        note["text"] = (
            f"{got.version.num_rows:,} flights ({got.counts.cancelled:,} cancelled dropped) "
            f"with weather -> {got.version.uri}; contract ok; {len(got.checks)} quality checks"
            + (f", warnings: {', '.join(warned)}" if warned else ", all ok")
        )
    return frame


def train_stage(stages: _Stages, client: Client, options: DemoOptions, result: DemoResult) -> None:
    """2. The training pipeline on January-April, then the gate and ``champion``."""
    from loopml.demo.main import PROJECT
    from loopml.demo.train import training
    from loopml.models import Gate, checks

    with stages.stage(2, "train", "train, tune, compare, register (Jan-Apr)") as note:
        run = training.run(
            source=result.data["dataset"],
            start="2013-01-01",
            end="2013-05-01",
            holdout_days=7,
            max_rows=options.train_rows,
            tune_rows=options.tune_rows,
            n_trials=options.n_trials,
            seed=options.seed,
            project=PROJECT,
            quiet=True,
        )
        out = dict(run.output)
        result.training = {"pipeline_run": run.run_id, **out}
        scores = ", ".join(f"{k} {v:.3f}" for k, v in out["scores"].items())
        note["text"] = (
            f"{len(out['scores'])} families x {options.n_trials} trials ({out['tuner']}); "
            f"ROC AUC {scores}; best {out['family']} -> {out['model_uri']}"
        )
    with stages.stage(2, "gate", "gate and promote to champion") as note:
        gate = Gate(
            [
                checks.metric("roc_auc", min=0.6),
                checks.metric("accuracy", min=0.7),
                checks.latency(p99_ms=1000),
                checks.data_contract(),
                checks.sanity(),
            ],
            data=out["holdout"],
            target=TARGET,
        )
        promotion = loopml.promote(MODEL, out["version"], "champion", gate=gate, project=PROJECT)
        assert promotion.gate is not None
        metrics = dict(promotion.gate.candidate_metrics)
        result.promotion = {
            "version": out["version"],
            "gate_passed": promotion.gate.passed,
            "checks": {c.name: c.passed for c in promotion.gate.checks},
            "holdout_accuracy": metrics.get("accuracy"),
            "holdout_roc_auc": metrics.get("roc_auc"),
        }
        note["text"] = (
            f"gate passed ({len(promotion.gate.checks)} checks on {out['holdout']}: accuracy "
            f"{metrics.get('accuracy', float('nan')):.3f}, ROC AUC "
            f"{metrics.get('roc_auc', float('nan')):.3f}) -> {MODEL}@champion = "
            f"v{out['version']}"
        )
    del client


def serve_stage(
    stages: _Stages, client: Client, options: DemoOptions, result: DemoResult, folder: Path
) -> ServerProcess:
    """3. The deployment, served by ``loopml serve --deployment`` on a real port."""
    from loopml.demo.main import DEPLOYMENT, PROJECT
    from loopml.demo.serve import ServerProcess

    with stages.stage(3, "serve", "serve over HTTP") as note:
        client.create_deployment(
            DEPLOYMENT,
            [{"name": "primary", "model_uri": f"models:/{MODEL}@champion", "role": "primary"}],
            sticky_key="key",
            description="the demo's delay model",
            config={
                "access_log": False,
                "poll_seconds": 0.25,
                "prediction_log": {
                    "window_seconds": options.window_seconds,
                    "flush_seconds": 0.2,
                },
            },
            project=PROJECT,
        )
        server = ServerProcess(
            Path(result.store), PROJECT, DEPLOYMENT, options.port, folder / "server.log"
        ).start()
        result.server = {"url": server.url, "command": " ".join(server.command)}
        note["text"] = f"{DEPLOYMENT} on {server.url} (prediction log on; log: server.log)"
    return server


def _monitor_spec(options: DemoOptions, result: DemoResult) -> dict[str, Any]:
    from loopml.demo.main import DEPLOYMENT

    baseline = float(
        result.promotion.get("holdout_accuracy") or result.training["holdout_accuracy"]
    )
    threshold = round(baseline - 0.03, 3)
    result.promotion["accuracy_alert_below"] = threshold
    w = options.window_seconds
    return {
        "deployment": DEPLOYMENT,
        "route": "primary",
        "window": w,
        "schedule": w,
        "reference": "training",
        "drift": {"drift_share": 0.2},
        "performance": {"metrics": ["accuracy", "f1"], "label_delay": 4 * w},
        "alerts": [
            {
                "name": "drift",
                "metric": "drift_share",
                "op": ">=",
                "threshold": 0.2,
                "for": 2,
                "severity": "warning",
            },
            {
                "name": "accuracy",
                "metric": "accuracy",
                "op": "<",
                "threshold": threshold,
                "for": 2,
                "severity": "critical",
            },
        ],
    }


def _policy(options: DemoOptions, url: str) -> Any:
    from loopml.demo.main import DEPLOYMENT, MONITOR, PROJECT
    from loopml.loop import Policy
    from loopml.models import Gate, checks

    per_week = options.rows_per_week
    return Policy.parse(
        {
            "name": "flight-delays-retrain",
            "model": MODEL,
            "project": PROJECT,
            "deployment": DEPLOYMENT,
            "triggers": [{"alert": MONITOR, "rule": "accuracy"}],
            "train": {
                "entry": "loopml.demo.train:retrain",
                "params": {
                    "dataset": "flights-recent",
                    "holdout_days": 5,
                    "max_rows": options.train_rows,
                    "tune_rows": options.tune_rows,
                    "n_trials": options.n_trials,
                    "seed": options.seed,
                    "project": PROJECT,
                },
            },
            "gate": Gate(
                [
                    checks.no_regression("roc_auc", tolerance=0.0),
                    checks.no_regression("accuracy", tolerance=0.005),
                    checks.latency(p99_ms=1000),
                    checks.sanity(),
                ],
                data="datasets:/flights-holdout@latest",
                target=TARGET,
            ),
            "rollout": {
                "strategy": "canary",
                "weight": 0.3,
                "route": "challenger",
                "duration": 2 * options.window_seconds,
                "min_predictions": per_week // 5,
                "max_duration": 600,
                "servers": [url],
                "criteria": {
                    "max_error_rate": 0.01,
                    "accuracy": {
                        "metric": "accuracy",
                        "min_labeled": per_week // 6,
                        "max_drop": 0.02,
                    },
                },
            },
            "cooldown": "1h",  # one cycle per demo
        }
    )


def replay_stage(
    stages: _Stages,
    client: Client,
    options: DemoOptions,
    result: DemoResult,
    frame: pd.DataFrame,
    url: str,
) -> Replay:
    """4-6. Live traffic, late labels, the monitor and its alerts, the loop."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from loopml.demo.main import DEPLOYMENT, MONITOR, PROJECT, week_row
    from loopml.demo.replay import Replay, Week, weeks_of
    from loopml.loop import LoopRunner
    from loopml.monitoring import create_monitor

    create_monitor(client, MONITOR, _monitor_spec(options, result), project=PROJECT)
    runner = LoopRunner([_policy(options, url)], client=client)
    start = "2013-05-01"
    total = len(weeks_of(start, options.end))
    console = stages.console
    with stages.stage(4, "replay", f"replay {start} to {options.end} as live traffic") as note:
        with Progress(
            TextColumn("   {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("weeks", total=total)

            def on_week(week: Week) -> None:
                bar.advance(task)
                acc = week.accuracy
                routes = ", ".join(f"{k} {v}" for k, v in sorted(week.routes.items()))
                line = (
                    f"   week {week.number:>2} {week.first_day}: {week.sent:>5,} predictions "
                    f"({routes}); accuracy {acc:.3f}, drift share "
                    f"{week.metrics.get('drift_share', float('nan')):.2f}"
                )
                bar.console.print(line, highlight=False)
                for alert in week.alerts:
                    bar.console.print(f"     [red]alert[/] {alert}", highlight=False)
                phase, reason = week.loop
                if phase not in ("idle", last_phase[0]):
                    bar.console.print(f"     [cyan]loop[/] {phase}: {reason}", highlight=False)
                last_phase[0] = phase

            last_phase = ["idle"]
            replay = Replay(
                client,
                PROJECT,
                frame,
                url,
                deployment=DEPLOYMENT,
                monitor=MONITOR,
                runner=runner,
                window_seconds=options.window_seconds,
                rows_per_week=options.rows_per_week,
                recent_rows=options.train_rows,
                seed=options.seed,
                on_week=on_week,
            )
            replay.run(start, options.end)
        result.weeks = [week_row(w) for w in replay.weeks]
        result.alerts = list(replay.alert_events)
        sent = sum(w.sent for w in replay.weeks)
        fired = sorted({a["rule"] for a in replay.alert_events if a["kind"] == "fired"})
        note["text"] = (
            f"{sent:,} predictions over {len(replay.weeks)} weeks; alerts fired: "
            f"{', '.join(fired) or 'none'}"
        )
    _record_loop(client, result)
    return replay


def _record_loop(client: Client, result: DemoResult) -> None:
    from loopml.demo.main import PROJECT
    from loopml.loop import loop_status

    (status,) = loop_status("flight-delays-retrain", client=client, project=PROJECT, limit=50)
    result.loop = {
        "phase": status.state.phase,
        "reason": status.state.reason,
        "cycle": status.state.cycle,
        "challenger_version": status.state.version,
        "champion": status.champion,
        "trigger": dict(status.state.trigger),
    }
    result.decisions = [
        {"action": d["action"], "reason": d["reason"]} for d in reversed(status.decisions)
    ]


def compare_stage(
    stages: _Stages,
    client: Client,
    options: DemoOptions,
    result: DemoResult,
    frame: pd.DataFrame,
    replay: Replay,
) -> None:
    """7. Both champions on the same recent labelled weeks; drift before and after."""
    import pandas as pd

    from loopml.demo.main import MONITOR, PROJECT

    with stages.stage(7, "compare", "compare before and after") as note:
        first = int(result.promotion["version"])
        now = client.get_model_version_by_alias(MODEL, "champion", project=PROJECT).version
        promoted_week = next((w.number for w in replay.weeks if w.loop[0] == "promoted"), None)
        # the same window for both: the weeks after the promotion (else the last four weeks)
        weeks = replay.weeks
        after = [w for w in weeks if promoted_week is not None and w.number > promoted_week]
        window = after or weeks[-4:]
        lo = pd.Timestamp(window[0].first_day, tz="UTC")
        hi = pd.Timestamp(window[-1].last_day, tz="UTC") + pd.Timedelta(days=1)
        rows = frame[(frame[TIME] >= lo) & (frame[TIME] < hi)]
        cap = 8_000 if options.quick else 20_000
        if len(rows) > cap:
            rows = rows.sample(cap, random_state=options.seed)
        data = loopml.log_dataset(
            rows[[*FEATURES, TARGET]].reset_index(drop=True),
            "flights-after",
            target=TARGET,
            description=f"labelled flights {lo.date()} to {(hi - pd.Timedelta(days=1)).date()}",
            project=PROJECT,
        )
        scores: dict[str, dict[str, float]] = {}
        for version in sorted({first, now}):
            ev = loopml.evaluate(
                f"models:/{MODEL}/{version}", data.uri, target=TARGET, project=PROJECT
            )
            scores[f"v{version}"] = {
                k: float(ev.metrics[k]) for k in ("accuracy", "roc_auc", "f1") if k in ev.metrics
            }
        live_before = [
            w.accuracy for w in weeks if promoted_week is None or w.number <= promoted_week
        ]
        live_after = [w.accuracy for w in after]
        result.comparison = {
            "window": [lo.date().isoformat(), (hi - pd.Timedelta(days=1)).date().isoformat()],
            "dataset": data.uri,
            "rows": data.num_rows,
            "delay_rate": float(rows[TARGET].mean()),
            "before_version": first,
            "after_version": now,
            "promoted_after_week": promoted_week,
            "scores": scores,
            "live_accuracy_before": _mean(live_before),
            "live_accuracy_after": _mean(live_after),
        }
        result.drift = _drift_summary(replay, promoted_week)
        result.next_steps = _next_steps(result)
        b, a = scores[f"v{first}"], scores[f"v{now}"]
        note["text"] = (
            f"on {data.num_rows:,} flights {result.comparison['window'][0]}.."
            f"{result.comparison['window'][1]}: accuracy v{first} {b['accuracy']:.3f} -> "
            f"v{now} {a['accuracy']:.3f}"
        )
    del MONITOR


def _mean(values: list[float]) -> float | None:
    good = [v for v in values if v == v]
    return sum(good) / len(good) if good else None


def _drift_summary(replay: Replay, promoted_week: int | None) -> dict[str, dict[str, float]]:
    """Per feature: the mean drift statistic of the weeks before the promotion and after."""
    before: dict[str, list[float]] = {}
    after: dict[str, list[float]] = {}
    for week in replay.weeks:
        into = after if promoted_week is not None and week.number > promoted_week else before
        for key, value in week.metrics.items():
            if key.startswith("drift.") and value == value:
                into.setdefault(key.removeprefix("drift."), []).append(value)
    out = {}
    for feature in before:
        out[feature] = {
            "before": sum(before[feature]) / len(before[feature]),
            "after": (sum(after[feature]) / len(after[feature]))
            if after.get(feature)
            else float("nan"),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["before"]))


def _next_steps(result: DemoResult) -> list[str]:
    from loopml.demo.main import DEPLOYMENT, MONITOR, PROJECT

    store = f"loopml --store {result.store}"
    return [
        f"{store} runs list --project {PROJECT}",
        f"{store} pipelines list --project {PROJECT}",
        f"{store} models show {MODEL} --project {PROJECT}",
        f"{store} deployments show {DEPLOYMENT} --project {PROJECT}",
        f"{store} monitor show {MONITOR} --project {PROJECT}",
        f"{store} monitor report {MONITOR} --project {PROJECT} -o report.html",
        f"{store} monitor alerts --project {PROJECT}",
        f"{store} loop status --policy flight-delays-retrain --project {PROJECT}",
        f"{store} data list --project {PROJECT}",
    ]
