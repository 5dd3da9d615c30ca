"""The worker side of parallel tuning: a process (or Ray task) that runs objectives for a
driver in another process.

It is started as ``python -m loopml.tuning.worker FD`` (a socket shared with the driver) or, on
Ray, as a task that connects back to the driver's listener. Either way it receives the objective
(cloudpickled) and the store's URI once, then trials one at a time until told to stop; each
``Trial`` call goes back to the driver over the same connection. Messages::

    driver -> worker   ("hello", config)  ("trial", Ticket)  ("ok", result)  ("error", error)
                       ("stop",)
    worker -> driver   ("ready", pid)  ("fatal", text)  ("call", number, method, args)
                       ("done", number, Outcome)

Only the standard library, cloudpickle and loopml's client are imported here: a worker loads
Optuna only if the objective does.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["dump_error", "load_error", "main", "ray_main", "serve"]

log = logging.getLogger("loopml")


def dump_error(exc: BaseException) -> tuple[bytes | None, str]:
    """An exception for the wire: pickled when it can be, and as text always."""
    import cloudpickle  # type: ignore[import-untyped]

    text = "".join(traceback.format_exception(exc)).strip()
    try:
        data: bytes | None = cloudpickle.dumps(exc)
    except Exception:
        data = None
    return data, text


def load_error(payload: tuple[bytes | None, str], where: str) -> BaseException:
    """The exception sent by :func:`dump_error` (a :class:`LoopError` with its text when it
    cannot be rebuilt here), with the remote traceback as a note."""
    import pickle

    data, text = payload
    exc: BaseException | None = None
    if data is not None:
        try:
            loaded = pickle.loads(data)  # noqa: S301 - our own worker, over a private channel
            if isinstance(loaded, BaseException):
                exc = loaded
        except Exception:
            exc = None
    if exc is None:
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        exc = LoopError(f"{where}: {last}")
    exc.add_note(f"--- traceback {where} ---\n{text}")
    return exc


class _RemoteChannel:
    """A :class:`~loopml.tuning.trial.Channel` over the connection to the driver."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def call(self, number: int, method: str, args: tuple[Any, ...]) -> Any:
        self._conn.send(("call", number, method, args))
        kind, payload = self._conn.recv()
        if kind == "ok":
            return payload
        raise load_error(payload, "in the tuning process")


def _setup(config: dict[str, Any]) -> tuple[Any, Any]:
    """Apply the driver's import path, open the store, load the objective."""
    import cloudpickle

    from loopml.client import Client, context

    for entry in reversed(config["sys_path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    client = Client(config["tracking_uri"], config["artifact_uri"])
    # Open the store now: Client.buffer opens it under the lock it holds (a first call that
    # is a buffered log_metric would wait on itself), and a bad URI should fail here.
    client.store  # noqa: B018
    old = context.replace_client(client)
    if old is not None:
        old.close()
    context.set_project(config["project"])
    objective = cloudpickle.loads(config["objective"])
    catch = cloudpickle.loads(config["catch"])
    return client, (objective, catch)


def serve(conn: Connection) -> int:
    """Run trials for the driver at the other end of ``conn`` until it says stop (or goes
    away); returns how many trials ran here."""
    from loopml.tuning.trial import run_trial

    kind, config = conn.recv()
    if kind != "hello":
        raise LoopError(f"tuning worker: expected hello from the driver, got {kind!r}")
    try:
        client, (objective, catch) = _setup(config)
    except BaseException as exc:
        conn.send(("fatal", "".join(traceback.format_exception(exc)).strip()))
        return 0
    conn.send(("ready", os.getpid()))
    channel = _RemoteChannel(conn)
    done = 0
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the driver is gone
            if message[0] != "trial":
                break
            ticket = message[1]
            outcome, error = run_trial(
                objective, config["style"], ticket, channel, client, config["metric"], catch
            )
            try:
                client.flush(ticket.run["run_id"])
            except LoopError as err:
                log.warning("loopml: trial %d: metrics not written: %s", ticket.number, err)
            if error is not None:
                data, _ = dump_error(error)
                outcome = dataclasses.replace(outcome, exception=data)
            conn.send(("done", ticket.number, outcome))
            done += 1
            if outcome.interrupted:
                break
    finally:
        client.close()
    return done


def ray_main(address: Any, authkey: bytes) -> int:
    """The body of a Ray task: connect back to the driver and serve it."""
    from multiprocessing.connection import Client as Connect

    with Connect(address, authkey=authkey) as conn:
        return serve(conn)


def main(argv: list[str] | None = None) -> int:
    """``python -m loopml.tuning.worker FD``: serve the driver on the socket ``FD``."""
    import socket
    from multiprocessing.connection import Connection

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print(  # noqa: T201 - a command-line entry point
            "usage: python -m loopml.tuning.worker FD (started by loopml.tune)", file=sys.stderr
        )
        return 2
    sock = socket.socket(fileno=int(args[0]))
    with Connection(sock.detach()) as conn:
        serve(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
