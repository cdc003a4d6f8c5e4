"""The stream service in Dagster: its assets, their checks, and the sensor that watches it.

The service (``idr stream run``) runs outside Dagster's runs, so its assets are external:
the service reports their materializations to the instance itself (``report_runless_asset_event``,
with what each interval landed, aggregated and changed), and the ``idr_stream_service``
sensor, running by default, evaluates their checks on every tick: every offset accounted for,
the dead-letter rate, the consumer lag, and whether the service is alive at all (a dead
service cannot report its own death). The checks can also be run by hand from the UI.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from kafka.errors import KafkaError

from idr_pipeline.defs.platform.resources import KafkaResource, StoreResource
from idr_pipeline.defs.stream.streams import EVENTS, PROFILES
from idr_pipeline.live.accounting import account
from idr_pipeline.live.service import CONSUMER, BatchStats, StreamService
from idr_pipeline.settings import get_settings
from idr_pipeline.store.base import IdentityStore
from idr_pipeline.store.stream_state import alive, control_row
from idr_pipeline.stream.consume import watermarks

LIVE_EVENTS = dg.AssetKey("live_events")
LIVE_PROFILES = dg.AssetKey("live_profiles")
LIVE_AGGREGATES = dg.AssetKey("live_event_aggregates")
LIVE_MEMBERSHIP = dg.AssetKey("live_segment_membership")

ACCOUNTING_CHECK = "every_offset_accounted_for"
DEAD_LETTER_CHECK = "dead_letter_rate_under_threshold"
LAG_CHECK = "consumer_lag_under_threshold"
RUNNING_CHECK = "stream_service_running"

_GROUP = "stream"

live_assets = [
    dg.AssetSpec(
        LIVE_EVENTS,
        deps=[EVENTS.source_key],
        group_name=_GROUP,
        kinds={"python", "parquet"},
        description="Events the stream service landed in raw/events (valid rows) and "
        "dead_letters/events, one offset range per partition and micro-batch.",
    ),
    dg.AssetSpec(
        LIVE_PROFILES,
        deps=[PROFILES.source_key],
        group_name=_GROUP,
        kinds={"python", "parquet"},
        description="Profile messages the stream service landed in raw/profile_stream and dead letters.",
    ),
    dg.AssetSpec(
        LIVE_AGGREGATES,
        deps=[LIVE_EVENTS],
        group_name=_GROUP,
        kinds={"sqlite", "singlestore"},
        description="The store's event_aggregates, kept current by the stream service for the "
        "identities each micro-batch touched (the daily user_features publish reconciles them).",
    ),
    dg.AssetSpec(
        LIVE_MEMBERSHIP,
        deps=[LIVE_AGGREGATES],
        group_name=_GROUP,
        kinds={"sqlite", "singlestore"},
        description="Rule-segment members of the touched identities, re-evaluated with the audience "
        "API's SQL; joins and leaves in segment_membership_history.",
    ),
]


def _stale_after_s() -> float:
    s = get_settings()
    return max(60.0, 3 * s.stream_report_seconds, 10 * s.stream_batch_seconds)


def evaluations(store: IdentityStore, bootstrap: str | None) -> list[dg.AssetCheckEvaluation]:
    """Every check of the service's assets, from the store's ledger (and the broker for lag)."""
    s = get_settings()
    out: list[dg.AssetCheckEvaluation] = []
    row = control_row(store, CONSUMER)
    running = alive(row, _stale_after_s())
    status: dict[str, Any] = (row or {}).get("status") or {}
    out.append(
        dg.AssetCheckEvaluation(
            asset_key=LIVE_MEMBERSHIP,
            check_name=RUNNING_CHECK,
            passed=running,
            metadata={
                "heartbeat_at": str((row or {}).get("heartbeat_at")),
                "error": (row or {}).get("error") or "-",
                "positions": dg.MetadataValue.json(status.get("positions", {})),
                "paused": (row or {}).get("paused_at") is not None,
            },
        )
    )
    for key, topic in ((LIVE_EVENTS, s.events_topic), (LIVE_PROFILES, s.profiles_topic)):
        acc = account(store, CONSUMER, topic)
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=ACCOUNTING_CHECK,
                passed=acc.balanced,
                metadata={
                    k: dg.MetadataValue.json(v) if isinstance(v, list) else v
                    for k, v in acc.metadata().items()
                },
            )
        )
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=DEAD_LETTER_CHECK,
                passed=acc.dead_rate <= s.max_dead_letter_rate,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "dead_letters": acc.dead,
                    "messages": acc.messages,
                    "dead_letter_rate": round(acc.dead_rate, 5),
                    "threshold": s.max_dead_letter_rate,
                },
            )
        )
        lag = _lag(store, topic, bootstrap) if bootstrap else None
        out.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=LAG_CHECK,
                passed=lag is not None and lag <= s.max_consumer_lag,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"consumer_lag": -1 if lag is None else lag, "threshold": s.max_consumer_lag},
            )
        )
    return out


def _lag(store: IdentityStore, topic: str, bootstrap: str) -> int | None:
    """Messages behind the high watermarks; None when the service never read the topic."""
    positions = {
        int(r["kafka_partition"]): int(r["next_offset"])
        for r in store.select_rows("stream_offsets", {"consumer": CONSUMER, "topic": topic})
    }
    if not positions:
        return None
    try:
        _, high = watermarks(bootstrap, topic)
    except KafkaError:  # the broker is down: the lag is unknown, and the check says so
        return None
    return sum(max(0, high.get(p, 0) - o) for p, o in positions.items())


def _check(asset: dg.AssetKey, name: str, description: str):
    @dg.asset_check(asset=asset, name=name, description=description)
    def _run(store: StoreResource, kafka: KafkaResource) -> dg.AssetCheckResult:
        with store.open() as opened:
            found = next(
                e
                for e in evaluations(opened, kafka.bootstrap_servers)
                if e.asset_key == asset and e.check_name == name
            )
        return dg.AssetCheckResult(passed=found.passed, severity=found.severity, metadata=found.metadata)

    return _run


live_checks = [
    _check(
        LIVE_MEMBERSHIP, RUNNING_CHECK, "the stream service's heartbeat is fresh and it recorded no error"
    ),
    *[
        _check(key, name, text)
        for key in (LIVE_EVENTS, LIVE_PROFILES)
        for name, text in (
            (
                ACCOUNTING_CHECK,
                "ranges and recorded losses tile every offset up to the position; messages = valid + dead",
            ),
            (DEAD_LETTER_CHECK, "share of dead letters among the messages the service read"),
            (LAG_CHECK, "messages behind the high watermarks"),
        )
    ],
]


@dg.sensor(
    name="idr_stream_service",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the stream service (idr stream run): reports its checks and the topics' lag.",
)
def stream_service_sensor(
    context: dg.SensorEvaluationContext, store: StoreResource, kafka: KafkaResource
) -> dg.SensorResult:
    with store.open() as opened:
        events = evaluations(opened, kafka.bootstrap_servers)
        row = control_row(opened, CONSUMER)
    running = next(e for e in events if e.check_name == RUNNING_CHECK).passed
    status = ((row or {}).get("status") or {}) if row else {}
    reason = (
        f"stream service alive; positions {status.get('positions', {})}"
        if running
        else f"stream service not running ({(row or {}).get('error') or 'no fresh heartbeat'}); "
        "start it with `idr services up --only stream` or `idr stream run`"
    )
    return dg.SensorResult(skip_reason=reason, asset_events=events)


def dagster_reporter(instance: dg.DagsterInstance):
    """The service's reporter: one materialization per asset and interval, with what it did."""

    def report(service: StreamService, stats: BatchStats | None) -> None:
        kinds = {t: spec.kind for t, spec in service.topics.items()}
        by_kind = stats.by_kind(kinds) if stats else {}
        status = service.status()
        for key, kind in ((LIVE_EVENTS, "events"), (LIVE_PROFILES, "profiles")):
            counts = by_kind.get(kind)
            if not counts:
                continue
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    metadata={
                        **counts,
                        "dagster/row_count": counts["valid"],
                        "positions": dg.MetadataValue.json(status["positions"]),
                        "consumer_lag": dg.MetadataValue.json(status["consumer_lag"]),
                        "seconds_landing": round(stats.landed_s, 3) if stats else 0.0,
                    },
                )
            )
        if stats and by_kind.get("events"):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=LIVE_AGGREGATES,
                    metadata={
                        **{f"events_{k}": v for k, v in vars(stats.events).items()},
                        "identities_touched": stats.touched,
                        "as_of": status["as_of"],
                        "seconds_in_store": round(stats.applied_s, 3),
                    },
                )
            )
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=LIVE_MEMBERSHIP,
                    metadata={
                        "joined": dg.MetadataValue.json(stats.changes.joined),
                        "left": dg.MetadataValue.json(stats.changes.left),
                        "joins": sum(stats.changes.joined.values()),
                        "leaves": sum(stats.changes.left.values()),
                    },
                )
            )

    return report
