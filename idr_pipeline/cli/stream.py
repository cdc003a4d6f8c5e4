"""``idr generate-events``: a click stream of the generated people, to Kafka or to files.

Kept out of ``cli.py`` so the streaming commands and their imports travel together; ``cli.py``
registers the command with one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from idr_pipeline.devtools.synthetic.clickstream import generate_event_stream, write_jsonl
from idr_pipeline.settings import get_settings
from idr_pipeline.stream.producer import publish

console = Console()


def generate_events(
    people: Annotated[
        int, typer.Option(min=1, help="People of the generated data set (same as `idr generate --people`).")
    ] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Days of traffic, ending at --until.")] = 7,
    rate: Annotated[
        float, typer.Option(min=0, help="Messages per second when publishing; 0 = as fast as possible.")
    ] = 0.0,
    to: Annotated[
        str, typer.Option("--to", help="'kafka' (IDR_KAFKA_BOOTSTRAP_SERVERS) or a folder for JSONL files.")
    ] = "kafka",
    seed: Annotated[
        int, typer.Option(help="Same seed as `idr generate`, so user ids and e-mails match.")
    ] = 42,
    until: Annotated[
        str | None, typer.Option(help="End of the simulated period, ISO-8601 UTC; default today 00:00 UTC.")
    ] = None,
) -> None:
    """Page views, ad clicks, purchases and identify events of the generated people, plus sign-ups.

    Pass the --seed and --people that `idr generate` used, so events refer to those people.

    About 1% of the messages are malformed on purpose; they land as dead letters.
    """

    end = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    with console.status(f"simulating {days} days of {people:,} people"):
        stream = generate_event_stream(people=people, days=days, seed=seed, until=end)
    ss = get_settings()
    table = Table("topic", "messages", "destination", "seconds", "msg/s")
    if to == "kafka":
        bootstrap = get_settings().kafka_bootstrap_servers
        for topic, msgs in ((ss.events_topic, stream.events), (ss.profiles_topic, stream.profiles)):
            with console.status(f"publishing {len(msgs):,} messages to {topic}"):
                stats = publish(bootstrap, topic, msgs, rate=rate)
            table.add_row(
                topic, f"{stats.messages:,}", bootstrap, f"{stats.seconds:.1f}", f"{stats.per_second:,.0f}"
            )
    else:
        paths = write_jsonl(stream, Path(to), ss.events_topic, ss.profiles_topic)
        for topic, msgs in ((ss.events_topic, stream.events), (ss.profiles_topic, stream.profiles)):
            table.add_row(topic, f"{len(msgs):,}", str(paths[topic]), "", "")
    console.print(table)
    summary = Table("what", "count")
    for name, count in stream.summary().items():
        summary.add_row(name, f"{count:,}")
    console.print(summary)
