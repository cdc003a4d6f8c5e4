"""``up``/``down``/``status`` for the dev/test services, with their state in one JSON file.

The state file (``<run_dir>/services.json``) is what lets a later process (the CLI, pytest, the
Makefile) find services an earlier one started: pids to stop them, ports and URLs to use them.
``up`` is idempotent so every entry point may simply call it: a healthy service is reused,
a dead or sick one is restarted on its old port when that is still free.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from idr_pipeline.devtools.services import kafka, mariadb, stream
from idr_pipeline.devtools.services._proc import pid_alive, pid_command, stop_pid
from idr_pipeline.settings import get_settings

STATE_FILE = "services.json"
#: Environment variables that point tests at services started elsewhere (e.g. by CI).
ENV_KAFKA = "IDR_TEST_KAFKA_BOOTSTRAP"
ENV_STORE = "IDR_TEST_SINGLESTORE_URL"
#: Substring of each service's command line, checked so a recycled pid is never taken for ours.
_COMMAND_MARKER = {"kafka": "tansu", "mariadb": "mariadbd", "stream": stream.COMMAND_MARKER}


def resolve_run_dir(run_dir: str | os.PathLike[str] | None = None) -> Path:
    """``run_dir`` if given, else ``IdrSettings.run_dir`` (env ``IDR_RUN_DIR``, default ``<repo>/run``)."""
    if run_dir is None:
        run_dir = get_settings().run_dir
    return Path(run_dir).expanduser().resolve()


def state_path(run_dir: str | os.PathLike[str] | None = None) -> Path:
    return resolve_run_dir(run_dir) / STATE_FILE


def read_state(run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The saved state, or ``{}`` when there is none (or it is unreadable, e.g. half-written)."""
    path = state_path(run_dir)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    # Write-then-rename so a reader never sees half a file.
    path = run_dir / STATE_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Serialize up/down across processes: two pytest sessions must not start two brokers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "services.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running(name: str, entry: dict[str, Any] | None) -> bool:
    if not entry:
        return False
    pid = entry.get("pid")
    return pid_alive(pid) and _COMMAND_MARKER[name] in pid_command(int(pid or 0))


def _healthy(name: str, entry: dict[str, Any]) -> bool:
    # .get: a state file written by an older version may lack a field; that reads as unhealthy.
    if name == "stream":
        return True  # a running service; its own health is the idr_stream_service sensor's check
    if name == "kafka":
        return bool(entry.get("bootstrap")) and kafka.broker_healthy(entry["bootstrap"])
    return bool(entry.get("url")) and mariadb.mariadb_healthy(entry["url"])


def _service_status(name: str, entry: dict[str, Any] | None) -> dict[str, Any]:
    running = _running(name, entry)
    report: dict[str, Any] = dict(entry or {})
    report["running"] = running
    report["healthy"] = bool(running and entry and _healthy(name, entry))
    return report


def _endpoints_from(state: dict[str, Any]) -> dict[str, str]:
    return {
        "kafka_bootstrap": state.get("kafka", {}).get("bootstrap", ""),
        "store_url": state.get("mariadb", {}).get("url", ""),
    }


SERVICES = ("kafka", "mariadb")
#: Started only when asked for (``only=["stream"]``): tests must not have a consumer running.
OPTIONAL_SERVICES = ("stream",)


def up(run_dir: str | os.PathLike[str] | None = None, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Start the broker and MariaDB unless they already run healthily; return the status.

    ``only`` names a subset: the demo needs the broker but not the server (its store is the
    embedded SQLite), and installing MariaDB on a fresh machine takes minutes.
    The result is :func:`status`'s dict plus ``reused`` per service (True when it was already
    running and healthy, so nothing was started).
    """
    wanted = set(SERVICES if only is None else only)
    unknown = wanted - set(SERVICES) - set(OPTIONAL_SERVICES)
    if unknown:
        raise ValueError(f"unknown services {sorted(unknown)}; known: {SERVICES + OPTIONAL_SERVICES}")
    root = resolve_run_dir(run_dir)
    with _locked(root):
        state = read_state(root)
        reused: dict[str, bool] = {}
        starters = {
            "kafka": kafka.start_broker,
            "mariadb": mariadb.start_mariadb,
            "stream": stream.start_stream,
        }
        for name, start in starters.items():
            if name not in wanted:
                continue
            entry = state.get(name)
            if _running(name, entry) and _healthy(name, entry or {}):
                reused[name] = True
                continue
            if entry and _running(name, entry):
                stop_pid(entry.get("pid"))  # alive but not answering: replace it
            state[name] = start(root, port=(entry or {}).get("port"))
            reused[name] = False
            state["run_dir"] = str(root)
            _write_state(root, state)  # after each start, so a later failure leaves it stoppable
        state["endpoints"] = _endpoints_from(state)
        _write_state(root, state)
    result = status(root)
    for name, was_reused in reused.items():
        result[name]["reused"] = was_reused
    return result


@contextmanager
def started(
    only: Iterable[str], run_dir: str | os.PathLike[str] | None = None, keep: bool = False
) -> Iterator[dict[str, Any]]:
    """``up(only=...)`` for the length of a block, which gets its status; at the end the block
    stops the services this call started, unless ``keep``. A service that was already running
    (``idr services up``, the tests) is left as it was. ``status["stopped_at_exit"]`` is filled
    in at the end with the names stopped, for the caller to report."""
    names = list(only)
    state = up(run_dir, only=names)
    ours = [name for name in names if not state[name].get("reused")]
    state["stopped_at_exit"] = []
    try:
        yield state
    finally:
        if ours and not keep:
            down(run_dir, only=ours)
            state["stopped_at_exit"] = ours


def down(run_dir: str | os.PathLike[str] | None = None, only: Iterable[str] | None = None) -> dict[str, bool]:
    """Stop the services (SIGTERM, then SIGKILL) and forget them in the state file.

    Returns per service whether a running process was stopped. MariaDB's datadir is kept, so
    the next ``up`` skips initialization; delete the run dir for a clean slate. Tansu keeps
    topics in memory, so stopping it (``only=["kafka"]``) is how a fresh demo empties them.
    """
    wanted = [name for name in (*OPTIONAL_SERVICES, *SERVICES) if only is None or name in set(only)]
    root = resolve_run_dir(run_dir)
    stopped: dict[str, bool] = {}
    with _locked(root):
        state = read_state(root)
        for name in wanted:
            entry = state.pop(name, None)
            # MariaDB flushes InnoDB on SIGTERM; give it longer than the broker.
            stopped[name] = _running(name, entry) and stop_pid(
                (entry or {}).get("pid"), grace=60.0 if name == "mariadb" else 10.0
            )
        if any(name in state for name in (*SERVICES, *OPTIONAL_SERVICES)):
            state["endpoints"] = _endpoints_from(state)
            _write_state(root, state)
        else:
            state_path(root).unlink(missing_ok=True)
    return stopped


def status(run_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Per service: the saved entry plus ``running`` (live pid) and ``healthy`` (answers queries)."""
    root = resolve_run_dir(run_dir)
    state = read_state(root)
    return {
        "run_dir": str(root),
        "state_file": str(root / STATE_FILE),
        "kafka": _service_status("kafka", state.get("kafka")),
        "mariadb": _service_status("mariadb", state.get("mariadb")),
        **({"stream": _service_status("stream", state.get("stream"))} if "stream" in state else {}),
        "endpoints": _endpoints_from(state),
    }


def service_endpoints(
    run_dir: str | os.PathLike[str] | None = None, *, start: bool = False
) -> dict[str, str]:
    """``{"kafka_bootstrap": "127.0.0.1:PORT", "store_url": "singlestoredb://idr:idr@.../idr"}``.

    ``IDR_TEST_KAFKA_BOOTSTRAP`` / ``IDR_TEST_SINGLESTORE_URL`` win when set (services managed
    outside this machine's run dir); otherwise the values come from the state file. With
    ``start=True`` services that are missing or unhealthy are started first; without it a
    missing endpoint raises ``RuntimeError`` telling how to start them.
    """
    endpoints = {"kafka_bootstrap": os.environ.get(ENV_KAFKA, ""), "store_url": os.environ.get(ENV_STORE, "")}
    if all(endpoints.values()):
        return endpoints
    if start:
        current = status(run_dir)
        if not (current["kafka"]["healthy"] and current["mariadb"]["healthy"]):
            current = up(run_dir)
        from_state = current["endpoints"]
    else:
        from_state = _endpoints_from(read_state(run_dir))
    merged = {key: endpoints[key] or from_state[key] for key in endpoints}
    missing = [key for key, value in merged.items() if not value]
    if missing:
        raise RuntimeError(
            f"no endpoint for {', '.join(missing)}: run `python -m idr_pipeline.services up` "
            f"(or `idr services up`), or set {ENV_KAFKA} / {ENV_STORE}"
        )
    return merged
