"""The ``idr`` command line: generate data, resolve files, run the demo, manage dev services.

Commands stay thin: each one parses options, shows progress, and calls a function that the
tests and the Dagster assets also call.
"""

from __future__ import annotations

import getpass
import os
import shutil
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import dagster as dg
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from idr_pipeline.cli.resolve import resolve_files
from idr_pipeline.cli.serve import register as _register_api
from idr_pipeline.cli.stream import generate_events
from idr_pipeline.cli.stream_service import stream_app
from idr_pipeline.core.lake import Lake
from idr_pipeline.core.spark import get_spark
from idr_pipeline.devtools import services
from idr_pipeline.devtools.dagster_runs import materialize_everything
from idr_pipeline.devtools.stream_demo import format_stream_demo, run_stream_demo
from idr_pipeline.devtools.synthetic import generate_dataset
from idr_pipeline.devtools.synthetic.phenomena import Phenomena
from idr_pipeline.ingest.mapping import MappingError
from idr_pipeline.quality.summary import format_embedding_summary, format_summary, summarize
from idr_pipeline.settings import PROJECT_ROOT, get_settings
from idr_pipeline.store import open_store, parse_store_url, redact_store_url

app = typer.Typer(help="idr_pipeline: identity resolution and audience segmentation.", no_args_is_help=True)
services_app = typer.Typer(
    help="Dev and test services: the Tansu Kafka broker and MariaDB.", no_args_is_help=True
)
app.add_typer(services_app, name="services")
decide_app = typer.Typer(
    help="Stewards' decisions: force two records together or apart, through every re-run.",
    no_args_is_help=True,
)
app.add_typer(decide_app, name="decide")
console = Console()


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


@app.command()
def generate(
    people: Annotated[int, typer.Option(min=1, help="How many distinct people to invent.")] = 10_000,
    out: Annotated[
        Path, typer.Option(help="Folder for the source files, truth.csv and sources.yaml.")
    ] = Path("data/landing"),
    seed: Annotated[int, typer.Option(help="Same seed, same files.")] = 42,
    junior_rate: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Of fathers living with a son, those whose son is named after them."),
    ] = None,
    shared_device_rate: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Of households of two or more, those with a family tablet."),
    ] = None,
    initial_only_rate: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Of point-of-sale records, those with only a first initial."),
    ] = None,
    dob_withheld_rate: Annotated[
        float | None, typer.Option(min=0, max=1, help="Of people, those who give no source a date of birth.")
    ] = None,
) -> None:
    """Write one file per source (crm CSV, pos CSV, web JSON lines, app Parquet) plus the truth.

    The rates switch the hard cases of real data (0: off; default: idr_pipeline/devtools/synthetic/phenomena.py).
    """

    rates = {
        "junior_rate": junior_rate,
        "shared_device_rate": shared_device_rate,
        "initial_only_rate": initial_only_rate,
        "dob_withheld_rate": dob_withheld_rate,
    }
    phenomena = Phenomena(**{name: rate for name, rate in rates.items() if rate is not None})

    with _progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, total: int) -> None:
            for task_id in tasks.values():
                progress.update(task_id, completed=progress.tasks[task_id].total)
            tasks[stage] = progress.add_task(stage, total=max(total, 1))

        result = generate_dataset(
            people=people, out_dir=out, seed=seed, on_progress=on_progress, phenomena=phenomena
        )
        for task_id in tasks.values():
            progress.update(task_id, completed=progress.tasks[task_id].total)
    table = Table("file", "records")
    for source, count in result.records_by_source.items():
        table.add_row(source, f"{count:,}")
    console.print(table)
    console.print(f"{result.n_people:,} people; truth in {out / 'truth.csv'}")


@app.command()
def resolve(
    input: Annotated[list[Path], typer.Option("--input", "-i", help="A source file; repeat for several.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="record_id,identity_id as .csv or .parquet")],
    mapping: Annotated[
        Path | None,
        typer.Option(help="Source mapping YAML; omit when the inputs are in the canonical schema."),
    ] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Keep the intermediate lake here (default: a temp dir).")
    ] = None,
) -> None:
    """Resolve files outside Dagster with the same pipeline functions the assets run."""

    started = time.perf_counter()
    try:
        with console.status("starting Spark") as status:

            def step(msg: str) -> None:
                # Logged as well as shown, so a slow run's log says which step took the time.
                console.log(f"{time.perf_counter() - started:7.1f} s  {msg}")
                status.update(msg)

            outcome = resolve_files(input, output, mapping_path=mapping, work_dir=work_dir, on_step=step)
    except (MappingError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    c, g = outcome.cleaning, outcome.graph
    console.print(
        f"{c.raw_rows:,} rows in: {c.clean_rows:,} clean, {c.quarantined_rows:,} quarantined, "
        f"{c.collapsed_duplicates:,} duplicates collapsed"
    )
    console.print(f"{g.identities:,} identities (largest {g.largest_cluster} records) -> {outcome.output}")
    if outcome.quarantine_output:
        console.print(f"quarantined rows with reasons -> {outcome.quarantine_output}")
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
def why(
    record_a: Annotated[str, typer.Argument(help="A record id.")],
    record_b: Annotated[str, typer.Argument(help="Another record id.")],
) -> None:
    """Why two records are in one identity: the chain of kept links and each link's weights."""

    with open_store(get_settings().store_url) as store:
        answer = store.why_merged(record_a, record_b)
    if not answer["same_identity"]:
        console.print(
            f"{record_a} -> {answer['identity_a'] or 'unknown'}, {record_b} -> {answer['identity_b'] or 'unknown'}: "
            "not the same identity"
        )
        raise typer.Exit(code=1)
    console.print(f"{record_a} and {record_b} are both {answer['identity_a']}:")
    for step in answer["path"]:
        weights = step["weights"] if isinstance(step["weights"], dict) else {}
        detail = ", ".join(
            f"{k} {v:+.1f}" if isinstance(v, int | float) else f"{k} {v}" for k, v in weights.items()
        )
        console.print(f"  {step['from']} -- {step['to']}  p={step['probability']:.4f}  {detail}")
        decision = step.get("decision")
        if decision is not None:
            console.print(
                f"    forced by a steward ({decision['decision']}, {decision['decided_by'] or 'unknown'}, "
                f"{decision['decided_at']}): {decision['reason'] or 'no reason given'}"
            )


@decide_app.command("link")
def decide_link(
    record_a: Annotated[str, typer.Argument(help="A record id.")],
    record_b: Annotated[str, typer.Argument(help="Another record id.")],
    reason: Annotated[str, typer.Option(help="Why, kept with the decision.")],
) -> None:
    """Force two records into one identity, from the next run on, whatever the model says."""
    _decide(record_a, record_b, "link", reason)


@decide_app.command("split")
def decide_split(
    record_a: Annotated[str, typer.Argument(help="A record id.")],
    record_b: Annotated[str, typer.Argument(help="Another record id.")],
    reason: Annotated[str, typer.Option(help="Why, kept with the decision.")],
) -> None:
    """Force two records apart, through every re-run and streaming update."""
    _decide(record_a, record_b, "split", reason)


def _decide(record_a: str, record_b: str, decision: str, reason: str) -> None:
    with open_store(get_settings().store_url) as store:
        store.ensure_schema()
        changed = store.record_decision(record_a, record_b, decision, reason, f"cli:{getpass.getuser()}")
    console.print(f"{decision} {record_a} {record_b}: {'recorded' if changed else 'already recorded'}")


@decide_app.command("remove")
def decide_remove(
    record_a: Annotated[str, typer.Argument(help="A record id.")],
    record_b: Annotated[str, typer.Argument(help="Another record id.")],
) -> None:
    """Withdraw a decision on two records; the next run decides them by the model again."""
    with open_store(get_settings().store_url) as store:
        store.ensure_schema()
        removed = store.remove_decision(record_a, record_b)
    if not removed:
        _fail(f"no decision on {record_a} and {record_b}")
    console.print(f"removed the decision on {record_a} and {record_b}")


@decide_app.command("list")
def decide_list() -> None:
    """Every decision in the store."""
    with open_store(get_settings().store_url) as store:
        store.ensure_schema()
        rows = store.match_decisions()
    table = Table("record a", "record b", "decision", "by", "at", "reason")
    for row in rows:
        table.add_row(
            row["record_id_l"], row["record_id_r"], row["decision"], str(row["decided_by"] or ""),
            str(row["decided_at"]), str(row["reason"] or ""),
        )  # fmt: skip
    console.print(table)


def _prepare_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project's instance so demo runs show up in ``dagster dev``."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=1, help="People in the generated sample.")] = 10_000,
    seed: Annotated[int, typer.Option()] = 42,
    fresh: Annotated[
        bool, typer.Option(help="Start from an empty landing folder, lake, store and Kafka topics.")
    ] = True,
    stream: Annotated[
        bool, typer.Option(help="Also stream events through Kafka into identities and segments.")
    ] = True,
    event_days: Annotated[int, typer.Option(min=1, help="Days of behavioral events to stream.")] = 7,
    keep_broker: Annotated[
        bool, typer.Option(help="Leave the Kafka broker the demo starts running when it ends.")
    ] = False,
) -> None:
    """Generate a sample, materialize every asset through Dagster, stream events, print the summary."""

    settings = get_settings()
    started = time.perf_counter()
    if fresh:
        _reset_local_state(settings.landing_dir, settings.lake_uri, settings.store_url)
    generate(people=people, out=Path(settings.landing_dir), seed=seed)
    _prepare_dagster_home()
    with console.status("materializing the asset graph through Dagster"):
        run = materialize_everything(instance=dg.DagsterInstance.get())
    lake = Lake(settings.lake_uri, get_spark(settings))
    summary = summarize(lake, Path(settings.landing_dir) / "truth.csv")
    console.rule("summary")
    console.print(format_summary(summary), highlight=False)
    console.print(format_embedding_summary(run.metadata), highlight=False)
    checks = dict(run.check_results)
    if stream:
        with console.status("streaming events through Kafka: sensors, stitching, segments"):
            streamed = run_stream_demo(dg.DagsterInstance.get(), people, seed, event_days, fresh, keep_broker)
        console.rule("stream")
        console.print(format_stream_demo(streamed), highlight=False)
        checks.update(streamed.checks)
    failed = [name for name, passed in checks.items() if not passed]
    console.print(f"asset checks: {len(checks) - len(failed)}/{len(checks)} passed")
    for name in failed:
        console.print(f"  [red]failed[/] {name}")
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; `make dev` opens the Dagster UI")
    console.print(
        "API: `.venv/bin/idr keys create --name me --scopes read` prints a key, then "
        "`.venv/bin/idr serve` serves http://127.0.0.1:8000/docs (curl examples in the README)"
    )
    if failed:
        raise typer.Exit(code=1)


def _reset_local_state(landing_dir: str, lake_uri: str, store_url: str | SecretStr) -> None:
    """Remove only local folders and SQLite files: a demo must never wipe a remote lake or store."""
    targets = [Path(landing_dir)]
    if lake_uri.startswith("file:"):
        targets.append(Path(urlparse(lake_uri).path))
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
    store = parse_store_url(store_url)
    if store.backend == "sqlite" and store.path != ":memory:":
        Path(store.path).unlink(missing_ok=True)


def _run_dir(run_dir: Path | None) -> Path:
    return Path(run_dir or get_settings().run_dir)


@services_app.command("up")
def services_up(
    run_dir: Annotated[Path | None, typer.Option()] = None,
    only: Annotated[list[str] | None, typer.Option(help="start just these: kafka, mariadb, stream")] = None,
) -> None:
    """Start the Tansu broker and MariaDB (installing MariaDB if it is missing); `--only stream` the stream service."""

    with console.status("starting services"):
        state = services.up(_run_dir(run_dir), only=only or None)
    _print_services(state)


@services_app.command("down")
def services_down(run_dir: Annotated[Path | None, typer.Option()] = None) -> None:
    """Stop the services (the stream service too) and forget their state."""

    services.down(_run_dir(run_dir))
    console.print("services stopped")


@services_app.command("status")
def services_status(run_dir: Annotated[Path | None, typer.Option()] = None) -> None:
    """Show whether each service is running and how to reach it."""

    _print_services(services.status(_run_dir(run_dir)))


#: Keys of the services' state whose values are store URLs: shown with the password masked (the
#: state file, whose path the table shows, holds them whole for the tests and the scripts).
_STORE_URL_KEYS = ("url", "store_url")


def _redacted(detail: object) -> object:
    if isinstance(detail, dict):
        return {
            key: redact_store_url(value) if key in _STORE_URL_KEYS and value else _redacted(value)
            for key, value in detail.items()
        }
    return detail


def _print_services(state: dict) -> None:
    table = Table("service", "detail")
    for name, detail in _redacted(state).items():
        table.add_row(str(name), str(detail))
    console.print(table)


# `idr serve`, `idr keys ...` and `idr generate-events` live in their own modules.
_register_api(app)
app.command("generate-events")(generate_events)
app.add_typer(stream_app, name="stream")


if __name__ == "__main__":  # pragma: no cover
    app()
