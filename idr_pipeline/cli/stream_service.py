"""``idr stream run | status | reset``: the long-lived stream service and its recovery.

``run`` consumes both topics until stopped (SIGTERM or Ctrl-C finish the current micro-batch
first); ``idr services up --only stream`` runs it in the background. When ``DAGSTER_HOME``
names an instance, the service reports its assets there. ``reset`` is the one command that
follows a stop for a position that no longer fits its topic.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated

import dagster as dg
import typer
from rich.console import Console
from rich.table import Table

from idr_pipeline.defs.stream.live import dagster_reporter
from idr_pipeline.live.accounting import account
from idr_pipeline.live.recovery import reset_topic
from idr_pipeline.live.service import CONSUMER, ServiceConfig, StreamService
from idr_pipeline.settings import IdrSettings, get_settings
from idr_pipeline.store import open_store
from idr_pipeline.store.stream_state import control_row
from idr_pipeline.stream.guard import PositionMismatch

console = Console()
stream_app = typer.Typer(
    help="The stream service: Kafka to the lake and to current audiences.", no_args_is_help=True
)


def service_config(settings: IdrSettings | None = None) -> ServiceConfig:
    s = settings or get_settings()
    return ServiceConfig(
        bootstrap=s.kafka_bootstrap_servers,
        store_url=s.store_url,
        lake_uri=s.lake_uri,
        events_topic=s.events_topic,
        profiles_topic=s.profiles_topic,
        segments_path=s.segments_path,
        batch_seconds=s.stream_batch_seconds,
        batch_max_messages=s.stream_batch_max_messages,
        check_seconds=s.stream_report_seconds,
        reader=s.stream_reader,
    )


@stream_app.command("run")
def run(
    report: Annotated[bool, typer.Option(help="Report to the Dagster instance of DAGSTER_HOME.")] = True,
) -> None:
    """Consume the events and profiles topics until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kafka", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    stop = {"now": False}

    def on_signal(signum: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reporter = None
    if report and os.environ.get("DAGSTER_HOME"):
        reporter = dagster_reporter(dg.DagsterInstance.get())
    config = service_config(settings)
    try:
        with StreamService(config) as service:
            logging.getLogger(__name__).info(
                "stream service running: %s and %s on %s, store %s",
                config.events_topic,
                config.profiles_topic,
                config.bootstrap,
                config.store_url.split("@")[-1],
            )
            service.run(lambda: stop["now"], reporter, settings.stream_report_seconds)
    except PositionMismatch as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc


@stream_app.command("status")
def status() -> None:
    """The service's heartbeat, positions and accounting per topic."""
    s = get_settings()
    with open_store(s.store_url) as store:
        store.ensure_schema()
        row = control_row(store, CONSUMER) or {}
        table = Table("what", "value")
        table.add_row("heartbeat", str(row.get("heartbeat_at")))
        table.add_row("error", str(row.get("error") or "-"))
        table.add_row("status", str(row.get("status") or {}))
        for topic in (s.events_topic, s.profiles_topic):
            acc = account(store, CONSUMER, topic)
            table.add_row(f"{topic}", str(acc.metadata()))
    console.print(table)


@stream_app.command("reset")
def reset(topic: Annotated[str, typer.Option(help="The topic whose position no longer fits.")]) -> None:
    """Record the offsets that can no longer be read as lost, and restart the topic at its log start."""
    s = get_settings()
    done = reset_topic(s.kafka_bootstrap_servers, s.store_url, CONSUMER, topic)
    if not done.losses:
        console.print(f"{topic}: the saved position fits the topic; nothing to reset")
        return
    for loss in done.losses:
        last = "?" if loss["last_offset"] is None else loss["last_offset"]
        console.print(
            f"lost {topic}[{loss['kafka_partition']}] {loss['first_offset']}..{last}: {loss['reason']}"
        )
    console.print(f"{topic}: restarting at {done.positions}; start the service again")
