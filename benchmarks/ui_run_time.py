"""``resolve_job`` launched as the UI launches it, against the same job run in-process.

Data engineers run the pipeline from the Dagster UI, its schedules and its sensors; ``idr demo``
and the tests run it with ``execute_in_process``. This script measures both on the same data,
runs interleaved:

- **in-process**: a fresh Python process starts Spark first (``idr demo`` has a session from
  landing the sources already), then times ``resolve_job.execute_in_process`` on the project's
  instance;
- **UI**: a real ``dagster dev`` (webserver, daemon and code server, with the project's
  ``dagster.yaml``) is started once; each run is launched through the webserver's GraphQL API
  (``launchRun``, what the Launchpad's button sends; schedules and sensors submit through the
  same queue and run launcher) and timed from its creation to its end as the instance records
  them: queueing, the daemon's dequeue, the run worker's start, loading the code, Spark's start
  and every step.

Every run starts from the same state: the raw zone landed once and copied in, an empty store
and no Faiss index. Prints each run, the medians and their ratio (UI / in-process).

    .venv/bin/python benchmarks/ui_run_time.py --people 10000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCATION = "idr_pipeline"
JOB = "resolve_job"
#: In-process runs log to the console at this level; every event still reaches the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _paths(work: Path) -> dict[str, Path]:
    return {
        "landing": work / "landing",
        "lake": work / "lake",
        "landed": work / "landed_lake",
        "store": work / "store.db",
        "index": work / "faiss",
        "run": work / "run",
        "home": work / "dagster_home",
    }


def _environment(work: Path) -> dict[str, str]:
    """The settings every process of the benchmark runs with: its own landing, lake, store,
    index and Dagster instance, so the project's data and instance stay untouched."""
    p = _paths(work)
    env = dict(os.environ)
    env.update(
        IDR_LANDING_DIR=str(p["landing"]),
        IDR_LAKE_URI=p["lake"].as_uri(),
        IDR_STORE_URL=f"sqlite:///{p['store']}",
        IDR_INDEX_DIR=str(p["index"]),
        IDR_RUN_DIR=str(p["run"]),
        DAGSTER_HOME=str(p["home"]),
        PYSPARK_PYTHON=sys.executable,
        HF_HUB_OFFLINE="1",
    )
    return env


def _child(mode: str, work: Path) -> dict:
    """Run this script in ``mode`` in a fresh process; its last output line is a JSON result."""
    out = subprocess.run(
        [sys.executable, __file__, f"--child={mode}", "--work-dir", str(work)],
        env=_environment(work),
        cwd=REPO,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- children: run inside a process whose environment _environment() set ----------------------


def _land_sources() -> dict:
    """Land every generated source through ``ingest_job``, as the landing sensor's runs do."""
    import dagster as dg

    from idr_pipeline.definitions import load_idr_definitions
    from idr_pipeline.ingest.mapping import load_mappings
    from idr_pipeline.settings import get_settings

    settings = get_settings()
    ingest = load_idr_definitions().resolve_job_def("ingest_job")
    landed = []
    for name, mapping in sorted(load_mappings(settings.source_mapping_path).items()):
        if (Path(settings.landing_dir) / mapping.file).exists():
            ingest.execute_in_process(partition_key=name, instance=dg.DagsterInstance.get(), run_config=QUIET)
            landed.append(name)
    return {"landed": landed}


def _resolve_in_process() -> dict:
    import dagster as dg

    from idr_pipeline.core.spark import get_spark
    from idr_pipeline.definitions import load_idr_definitions

    started = time.perf_counter()
    get_spark()
    spark_start = time.perf_counter() - started
    job = load_idr_definitions().resolve_job_def(JOB)
    started = time.perf_counter()
    result = job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False, run_config=QUIET)
    return {
        "seconds": time.perf_counter() - started,
        "spark_start": spark_start,
        "success": result.success,
        "run_id": result.run_id,
    }


# --- the parent --------------------------------------------------------------------------------


def _prepare(work: Path, people: int, seed: int) -> None:
    from idr_pipeline.devtools.synthetic import generate_dataset

    p = _paths(work)
    shutil.rmtree(work, ignore_errors=True)
    p["home"].mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", p["home"] / "dagster.yaml")
    generate_dataset(people=people, out_dir=p["landing"], seed=seed)
    print(f"landing {people:,} people: {_child('land', work)['landed']}", flush=True)
    shutil.move(p["lake"], p["landed"])
    p["store"].unlink(missing_ok=True)


def _reset(work: Path) -> None:
    """The state before every measured run: the landed raw zone only, no store, no index."""
    p = _paths(work)
    shutil.rmtree(p["lake"], ignore_errors=True)
    shutil.copytree(p["landed"], p["lake"])
    shutil.rmtree(p["index"], ignore_errors=True)
    p["store"].unlink(missing_ok=True)


class DagsterDev:
    """``dagster dev`` on the project's workspace, with the benchmark's environment."""

    def __init__(self, work: Path, log: Path) -> None:
        self.port = _free_port()
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=REPO,
            env=_environment(work),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def client(self):
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.port)

    def wait_loaded(self, timeout: float = 300.0) -> None:
        """Until the webserver answers and the code location is loaded."""
        import httpx

        query = (
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
            " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.proc.returncode}; see {self._log.name}")
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{self.port}/graphql", json={"query": query}, timeout=10
                )
                entries = answer.json()["data"]["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                time.sleep(1)
                continue
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            if entry and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"]
                if loaded["__typename"] == "PythonError":
                    raise RuntimeError(f"code location failed to load: {loaded['message']}")
                return
            time.sleep(1)
        raise TimeoutError(f"dagster dev did not load {LOCATION} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def _launch_from_ui(dev: DagsterDev, work: Path, timeout: float) -> dict:
    """Launch through GraphQL, wait for the end, read the run's timestamps from the instance."""
    import dagster as dg

    client = dev.client()
    run_id = client.submit_job_execution(
        JOB, repository_location_name=LOCATION, repository_name="__repository__"
    )
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_run_status(run_id)
        if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status.value} after {timeout:.0f} s")
        time.sleep(0.5)
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME: the benchmark's instance, set by main()
        record = instance.get_run_record_by_id(run_id)
        created = record.create_timestamp.timestamp()
        first_step = min(
            (entry.timestamp for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)),
            default=float("nan"),
        )
    return {
        "seconds": record.end_time - created,
        "queued": record.start_time - created,
        "to_first_step": first_step - created,
        "success": status == dg.DagsterRunStatus.SUCCESS,
        "run_id": run_id,
    }


def _executor_of_job() -> str:
    from idr_pipeline.definitions import load_idr_definitions

    return load_idr_definitions().resolve_job_def(JOB).executor_def.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs, interleaved")
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "benchmarks" / "ui_run_time")
    parser.add_argument("--reuse", action="store_true", help="keep the sources landed by an earlier run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a UI run may take")
    parser.add_argument("--child", choices=["land", "in_process"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work_dir.resolve()

    if args.child:
        result = _land_sources() if args.child == "land" else _resolve_in_process()
        print(json.dumps(result))
        return

    os.environ["DAGSTER_HOME"] = str(_paths(work)["home"])
    if args.reuse and _paths(work)["landed"].exists():
        print(f"reusing the landed sources in {work}", flush=True)
    else:
        _prepare(work, args.people, args.seed)
    print(f"{JOB} executor in the code location: {_executor_of_job()}", flush=True)
    dev = DagsterDev(work, work / "dagster_dev.log")
    rows: list[tuple[str, dict]] = []
    try:
        dev.wait_loaded()
        for repeat in range(1, args.repeats + 1):
            for kind in ("in-process", "UI"):
                _reset(work)
                result = (
                    _child("in_process", work)
                    if kind == "in-process"
                    else _launch_from_ui(dev, work, args.timeout)
                )
                if not result["success"]:
                    raise RuntimeError(f"{kind} run {result['run_id']} failed; see the instance in {work}")
                rows.append((kind, result))
                detail = (
                    f"(Spark started before: {result['spark_start']:.1f} s)"
                    if kind == "in-process"
                    else f"(queued and launched: {result['queued']:.1f} s, first step after "
                    f"{result['to_first_step']:.1f} s)"
                )
                print(
                    f"{datetime.now():%H:%M:%S} #{repeat} {kind:>10}: {result['seconds']:7.1f} s {detail}",
                    flush=True,
                )
    finally:
        dev.stop()

    in_process = statistics.median(r["seconds"] for k, r in rows if k == "in-process")
    ui = statistics.median(r["seconds"] for k, r in rows if k == "UI")
    print(f"\n{JOB} on {args.people:,} people, {args.repeats} run(s) each, medians:")
    print(f"  in-process (execute_in_process, Spark warm): {in_process:7.1f} s")
    print(f"  launched through the webserver (dagster dev): {ui:7.1f} s")
    print(f"  ratio UI / in-process: {ui / in_process:.2f}")


if __name__ == "__main__":
    main()
