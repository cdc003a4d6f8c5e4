"""Open-loop load test of the API against a running server: p50/p95/p99 and throughput.

    .venv/bin/python benchmarks/api_load.py                       # SQLite, 100k identities
    .venv/bin/python benchmarks/api_load.py --store-url singlestoredb://idr:idr@127.0.0.1:PORT/idr_bench
    .venv/bin/python benchmarks/api_load.py --during-publish --code before=/tmp/before --code after=.

What it does:

1. Fills the store with ``--identities`` synthetic identities (identities, golden profiles,
   identifiers, record links) through the store's own upserts, unless it already holds them.
   Synthetic rows are enough: the API's cost depends on table sizes and index depth, not on
   whether the names came out of the generator.
2. Writes a match model with the product's comparisons and hand-set m/u (scoring costs the
   same whatever the parameters) and creates a read key.
3. Starts ``idr serve`` as a subprocess (uvicorn, one worker) and waits for ``/health``.
4. Drives each endpoint open-loop: request i is due at ``start + i / rate`` whether or not
   earlier ones have returned, and its latency is counted from that due time, so a slow server
   shows up as queueing instead of silently lowering the offered rate (coordinated omission).
   A 3 s warm-up at the same rate precedes each timed run and is not counted. The generator
   pauses its own garbage collector while it drives, so its pauses are not billed to the server.
5. Reports, per timed run, the CPU seconds every other process on the machine used meanwhile
   (from /proc; the server and the generator excluded, the store server listed on its own):
   on a shared machine another job's CPU moves the tail latencies more than any change to the
   API does, so a run says itself whether it had the machine.

6. With ``--during-publish``, drives each endpoint again while ``publish_worker.py`` publishes
   ``--publish-identities`` changed identities through the store's publish path, for as long
   as the publish runs. ``--code LABEL=DIR[:N]`` runs server and publisher from another tree
   (an earlier commit's ``git archive``), so before and after are measured in one run.

The load generator runs on the same 2-core machine as the server, so the figures include
that contention. Targets: GET /identities/{id} p99 <= 10 ms at 200 req/s; POST /resolve p99
<= 50 ms at 50 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import record  # noqa: E402
from api_load_people import person  # noqa: E402

from idr_pipeline.api.auth import create_key  # noqa: E402
from idr_pipeline.scoring.comparisons import COMPARISONS  # noqa: E402
from idr_pipeline.scoring.fellegi_sunter import MatchModel  # noqa: E402
from idr_pipeline.standardize import email_match_key  # noqa: E402
from idr_pipeline.store import IdentityStore, open_store  # noqa: E402


def seed(store: IdentityStore, n: int, chunk: int = 10_000) -> float:
    started = time.perf_counter()
    for lo in range(0, n, chunk):
        people = [person(i) for i in range(lo, min(n, lo + chunk))]
        store.upsert_identities(
            {"identity_id": p["identity_id"], "status": "active", "record_count": 1} for p in people
        )
        store.upsert_golden_profiles(
            {
                **p,
                "identifiers": {"email_key": [p["email"]], "phone": [p["phone"]]},
                "sources": ["crm"],
                "record_count": 1,
            }
            for p in people
        )
        store.upsert_record_links(
            {"record_id": f"crm-{p['identity_id']}", "identity_id": p["identity_id"], "source": "crm"}
            for p in people
        )
        store.upsert_identifiers(
            row
            for p in people
            for row in (
                {"id_type": "email", "id_value": p["email"], "identity_id": p["identity_id"]},
                {
                    "id_type": "email_key",
                    "id_value": email_match_key(p["email"]),
                    "identity_id": p["identity_id"],
                },
                {"id_type": "phone", "id_value": p["phone"], "identity_id": p["identity_id"]},
            )
        )
        print(f"  seeded {min(n, lo + chunk):,}/{n:,}", flush=True)
    return time.perf_counter() - started


def model_json() -> str:
    m = {c.name: (w := 2.0 ** np.arange(c.n_levels)) / w.sum() for c in COMPARISONS}
    u = {c.name: (w := 2.0 ** -np.arange(c.n_levels, dtype=float) * 4) / w.sum() for c in COMPARISONS}
    return MatchModel(comparisons=list(COMPARISONS), m=m, u=u, prior=1e-4).to_json()


def resolve_body(i: int, rng: random.Random) -> dict:
    """Half deterministic (the e-mail, spelled differently), half probabilistic (no identifier)."""
    p = person(i)
    if rng.random() < 0.5:
        return {"email": f"  {p['email'].upper()} ", "first_name": p["first_name"]}
    y, mth, d = p["dob"].split("-")
    return {
        "first_name": p["first_name"],
        "last_name": p["last_name"],
        "dob": f"{mth}/{d}/{y}",
        "street": p["street"],
        "postcode": p["postcode"],
    }


async def drive(
    base: str,
    key: str,
    kind: str,
    rate: float,
    duration: float,
    n: int,
    stop: Callable[[], bool] | None = None,
    drain: float = 30.0,
) -> dict:
    """Offer ``rate`` requests a second for ``duration`` seconds; with ``stop``, a request due
    once ``stop()`` holds is not sent, so the figures cover only the time before it (a publish)."""
    import httpx

    rng = random.Random(1)
    total = int(rate * duration)
    latencies: list[float] = []
    errors = 0
    last_end = 0.0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=30
    ) as client:

        async def one(due: float, i: int) -> None:
            nonlocal errors, last_end
            try:
                if kind == "identity":
                    response = await client.get(f"/identities/bench-{i:07d}")
                else:
                    response = await client.post("/resolve", json=resolve_body(i, rng))
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            last_end = time.perf_counter()
            latencies.append(last_end - due)
            errors += not ok

        # The generator's own garbage collector is paused while it drives: a full collection
        # here took ~100 ms on the 2-core box, during which no request was sent and every
        # one due meanwhile was counted late, i.e. the generator's pause billed to the server.
        gc.collect()
        gc.disable()
        try:
            # Each request is started at its due time by this one loop (several at once when
            # the loop is late; their latencies still count from their due times): a task per
            # request created up front made a long run's timer heap the generator's bottleneck.
            start = time.perf_counter() + 0.5
            tasks: list[asyncio.Task] = []
            dues: dict[asyncio.Task, float] = {}
            for k in range(total):
                due = start + k / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if stop is not None and stop():
                    break
                task = asyncio.create_task(one(due, rng.randrange(n)))
                tasks.append(task)
                dues[task] = due
            # Requests still unanswered ``drain`` seconds after the last was sent are cancelled
            # and counted as errors, with the time they waited so far (a lower bound): an
            # overloaded server's backlog would otherwise keep the run going for minutes.
            _, late = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
            cancelled_at = time.perf_counter()
            for task in late:
                task.cancel()
                latencies.append(cancelled_at - dues[task])
            await asyncio.gather(*late, return_exceptions=True)
            errors += len(late)
            unfinished = len(late)
            if late:
                last_end = cancelled_at
            elapsed = last_end - start
        finally:
            gc.enable()
    if not latencies:
        raise RuntimeError(f"no {kind} request was sent before the stop")
    ms = np.array(latencies) * 1000
    return {
        "endpoint": "GET /identities/{id}" if kind == "identity" else "POST /resolve",
        "offered_rps": rate,
        "requests": len(latencies),
        "errors": errors,
        "unfinished": unfinished,
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """pid -> (name, user + system CPU seconds so far) of every process, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def others_cpu(before: dict[int, tuple[str, float]], ours: set[int]) -> dict:
    """CPU seconds used since ``before`` by processes not in ``ours``: the store server apart,
    everything else summed, and the three busiest named (processes that ended are missed)."""
    used: dict[str, float] = {}
    store = other = 0.0
    for pid, (name, seconds) in cpu_seconds().items():
        if pid in ours:
            continue
        delta = seconds - before.get(pid, (name, 0.0))[1]
        if delta <= 0:
            continue
        if name in ("mariadbd", "mysqld", "memsqld"):
            store += delta
        else:
            other += delta
            used[f"{name}[{pid}]"] = delta
    busiest = sorted(used.items(), key=lambda kv: -kv[1])[:3]
    return {
        "store_server_cpu_s": round(store, 1),
        "others_cpu_s": round(other, 1),
        "busiest_others": ", ".join(f"{k} {v:.1f}s" for k, v in busiest if v >= 0.5) or "-",
    }


def ensure_port_free(port: int) -> None:
    """Refuse to start when something already listens on ``port``: the new server would fail to
    bind, and the health check and the load would reach the old one (a server left by an
    earlier run) and measure it instead."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is in use: stop what listens there or pass --port")


def wait_healthy(base: str, proc: subprocess.Popen, key: str, timeout: float = 300) -> dict:
    """The detailed health (a read key) once the server answers its bare liveness check."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return httpx.get(f"{base}/health/details", headers={"X-API-Key": key}, timeout=10).json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server did not become healthy")


def start_publish(
    code: Path, store_url: str, identities: int, commit_rows: int | None
) -> tuple[subprocess.Popen, threading.Event, list[str]]:
    """``publish_worker.py`` with ``code`` first on its path, once it says it is writing; the
    event is set when it has finished, its output lines collected in the list."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(ROOT / "benchmarks" / "publish_worker.py"), "--store-url", store_url,
               "--identities", str(identities)]  # fmt: skip
    if commit_rows is not None:
        command += ["--commit-rows", str(commit_rows)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() != "publishing":
        proc.wait()
        raise RuntimeError(f"the publisher did not start: {first!r}, exit {proc.returncode}")
    done, lines = threading.Event(), []

    def follow() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.strip())
            if line.startswith("published"):
                done.set()
        proc.wait()
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    return proc, done, lines


def run_code(
    args: argparse.Namespace, label: str, code: Path, commit_rows: int | None, key: str, work: Path
) -> list[dict]:
    """Start ``idr serve`` from ``code``, drive each endpoint on the quiet store, then (with
    ``--during-publish``) again while a publish of ``--publish-identities`` changed identities runs."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "IDR_STORE_URL": args.store_url,
        "IDR_API_MODEL_PATH": str(work / "model.json"),
        "IDR_INDEX_DIR": str(work / "faiss"),
        "IDR_API_PORT": str(args.port),
        # The load generator is one key offering more than the per-key budgets allow.
        "IDR_API_RATE_LIMIT": "1000000/second",
        "IDR_API_RATE_LIMIT_RESOLVE": "1000000/second",
    }
    base = f"http://127.0.0.1:{args.port}"
    ensure_port_free(args.port)
    # From /tmp: the entry script's own folder is first on its path, then PYTHONPATH.
    # Its log (one access line per identity read) goes to a file, as a deployment's would.
    log_path = work / f"server-{label}.log"
    print(f"[{label}] server log: {log_path}")
    with log_path.open("a") as log:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "idr"), "serve", "--port", str(args.port)], env=env,
                                cwd=tempfile.gettempdir(), stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    results = []
    try:
        started = time.perf_counter()
        health = wait_healthy(base, proc, key)
        print(f"[{label}] server up in {time.perf_counter() - started:.1f} s: {health['store']}, "
              f"model {health['model']['resolve_mode']}, "
              f"blocking index {health['model']['blocking_index_identities']:,} identities")  # fmt: skip
        loads = ["quiet", "publish"] if args.during_publish else ["quiet"]
        for load in loads:
            for kind, rate in (("identity", args.identity_rate), ("resolve", args.resolve_rate)):
                asyncio.run(drive(base, key, kind, rate, 3.0, args.identities))  # warm-up, not counted
                publish_seconds = None
                before = cpu_seconds()
                if load == "quiet":
                    result = asyncio.run(drive(base, key, kind, rate, args.duration, args.identities))
                    ours = {os.getpid(), proc.pid}
                else:
                    publisher, done, lines = start_publish(
                        code, args.store_url, args.publish_identities, commit_rows
                    )
                    result = asyncio.run(
                        drive(base, key, kind, rate, args.max_publish_seconds, args.identities, done.is_set)
                    )
                    publisher.wait()
                    if publisher.returncode != 0 or not lines or not lines[-1].startswith("published"):
                        raise RuntimeError(f"the publish failed ({publisher.returncode}): {lines}")
                    publish_seconds = float(lines[-1].split()[1])
                    ours = {os.getpid(), proc.pid, publisher.pid}
                result.update(others_cpu(before, ours))
                # The server's own CPU per request answered: what a change to the API costs or
                # saves, whatever else the machine was doing.
                server_cpu = cpu_seconds().get(proc.pid, ("", 0.0))[1] - before.get(proc.pid, ("", 0.0))[1]
                result["server_cpu_ms_per_req"] = round(server_cpu * 1000 / result["requests"], 2)
                results.append({"code": label, "store": health["store"]["backend"], "load": load,
                                "publish_s": publish_seconds if publish_seconds is not None else "-", **result})  # fmt: skip
                print(results[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store-url", default=f"sqlite:///{ROOT / 'data' / 'benchmarks' / 'api_store.db'}")
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds per endpoint on the quiet store"
    )
    parser.add_argument("--identity-rate", type=float, default=200.0)
    parser.add_argument("--resolve-rate", type=float, default=50.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--during-publish",
        action="store_true",
        help="also drive each endpoint while publish_worker.py publishes changed identities",
    )
    parser.add_argument("--publish-identities", type=int, default=100_000)
    parser.add_argument(
        "--max-publish-seconds", type=float, default=300.0, help="longest load driven during one publish"
    )
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="run the server and the publisher from the idr_pipeline package under DIR (e.g. an "
        "earlier commit's `git archive`); repeat to compare, the runs interleaved. DIR:N also sets "
        "the publisher's --commit-rows to N (0: one transaction per table). Default: this tree",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times each --code is run, interleaved")
    parser.add_argument("--record", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    codes: list[tuple[str, Path, int | None]] = []
    for text in args.code:
        label, _, spec = text.partition("=")
        path, _, rows = spec.partition(":")
        codes.append((label, Path(path).resolve(), int(rows) if rows else None))
    codes = codes or [("this", ROOT, None)]

    store = open_store(args.store_url)
    store.ensure_schema()
    have = store.count_rows("identities")
    if have < args.identities:
        print(f"seeding {args.identities:,} identities into {args.store_url.split('@')[-1]}")
        print(f"seeded in {seed(store, args.identities):.0f} s")
    key = create_key(store, "api-load-benchmark", ["read"])[1]
    backend = store.backend_name
    store.close()

    section = f"api-load-{'publish-' if args.during_publish else ''}{backend}"
    if args.record:
        record.check([section])
    work = Path(tempfile.mkdtemp(prefix="api_load_"))
    (work / "model.json").write_text(model_json())
    results = []
    for _ in range(args.rounds):
        for label, code, commit_rows in codes:
            results.extend(run_code(args, label, code, commit_rows, key, work))
    print()
    header = [
        "code",
        "store",
        "load",
        "endpoint",
        "offered_rps",
        "throughput_rps",
        "requests",
        "errors",
        "unfinished",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "publish_s",
        "server_cpu_ms_per_req",
        "store_server_cpu_s",
        "others_cpu_s",
        "busiest_others",
    ]
    print(" | ".join(header))
    for r in results:
        print(" | ".join(str(r[h]) for h in header))
    if args.record:  # one section per store backend, so its column is left out
        shown = [
            h
            for h in header
            if h != "store" and (args.during_publish or h not in ("code", "load", "publish_s"))
        ]
        rows = [f"| {' | '.join(str(r[h]) for h in shown)} |" for r in results]
        record.record(section, [f"| {' | '.join(shown)} |", "|---" * len(shown) + "|", *rows])


if __name__ == "__main__":
    main()
