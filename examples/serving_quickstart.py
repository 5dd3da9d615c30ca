"""loopml serving quick start: serve the champion of the models quick start, with a shadow.

Run ``models_quickstart.py`` first (``make demo`` does both). This stores a deployment
``churn-api`` (the primary follows ``models:/churn-classifier@champion``, a shadow gets a copy of
every request for version 2), serves it from a thread on a free port (the same app as ``loopml
serve --deployment churn-api``), asks it in the three protocols, sends 200 requests, shows a
refused one, then reads back the metrics and the prediction log.

    python serving_quickstart.py
    loopml --store .loopml deployments show churn-api --project quickstart
"""

from __future__ import annotations

import httpx
from models_quickstart import FEATURES, HOME, MODEL, PROJECT, make_data

import loopml
from loopml.errors import DeploymentNotFound


def main() -> None:
    loopml.set_tracking_uri(str(HOME))
    client = loopml.get_client()
    routes = [
        {"name": "primary", "model_uri": f"models:/{MODEL}@champion", "role": "primary"},
        {"name": "shadow", "model_uri": f"models:/{MODEL}/2", "role": "shadow"},
    ]
    try:
        client.delete_deployment("churn-api", "the quick start starts afresh", project=PROJECT)
    except DeploymentNotFound:
        pass
    client.create_deployment("churn-api", routes, project=PROJECT)
    _, live = make_data(11)
    rows = live[FEATURES].to_dict(orient="records")

    settings = {"access_log": False, "prediction_log": {"flush_seconds": 0.5}}
    with (
        loopml.serving.Server(
            deployment="churn-api", project=PROJECT, settings=settings
        ) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        print(f"serving churn-api on {server.url}")
        answer = http.post("/predict", json={"rows": rows[:2], "proba": True}).json()
        print(f"  POST /predict       -> {answer['predictions']} (version {answer['version']})")
        split = {
            "dataframe_split": {
                "columns": FEATURES,
                "data": live[FEATURES].head(2).values.tolist(),
            }
        }
        print(f"  POST /invocations   -> {http.post('/invocations', json=split).json()}")
        tensor = {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, len(FEATURES)],
                    "datatype": "FP64",
                    "data": live[FEATURES].head(2).to_numpy().ravel().tolist(),
                }
            ]
        }
        out = http.post(f"/v2/models/{MODEL}/infer", json=tensor).json()
        print(f"  POST /v2/.../infer  -> {out['outputs'][0]['data']}")
        for row in rows[:200]:
            http.post("/predict", json={"rows": [row]})
        bad = http.post("/predict", json={"rows": [{**rows[0], "tenure": "long"}]})
        print(f"  a bad request       -> {bad.status_code} {bad.json()['error']['problems']}")
        metrics = http.get("/metrics").text

    agree = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("loopml_shadow_comparisons_total") and 'result="agree"' in line
    )
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("loopml_shadow_comparisons_total")
    )
    print(f"shadow (version 2) agreed with the primary on {agree:.0f} of {total:.0f} requests")
    segments = client.list_prediction_segments("churn-api", project=PROJECT)
    windows = client.list_window_profiles("churn-api", project=PROJECT)
    logged = sum(s.rows for s in segments)
    print(
        f"prediction log: {logged} predictions in {len(segments)} segment(s), "
        f"{len(windows)} window profile(s)"
    )


if __name__ == "__main__":
    main()
