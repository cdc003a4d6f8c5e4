"""The stream service as Dagster sees it: the monitor sensor's checks and the service's reports."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dagster as dg
import pytest

from idr_pipeline.defs.platform.resources import KafkaResource, StoreResource
from idr_pipeline.defs.stream.live import (
    ACCOUNTING_CHECK,
    LIVE_EVENTS,
    LIVE_MEMBERSHIP,
    RUNNING_CHECK,
    dagster_reporter,
    stream_service_sensor,
)
from idr_pipeline.settings import get_settings
from idr_pipeline_tests.live.conftest import World, event


@pytest.fixture
def settings_for(world: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IDR_EVENTS_TOPIC", world.config.events_topic)
    monkeypatch.setenv("IDR_PROFILES_TOPIC", world.config.profiles_topic)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _tick(
    world: World, instance: dg.DagsterInstance
) -> dict[tuple[dg.AssetKey, str], dg.AssetCheckEvaluation]:
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "store": StoreResource(url=world.config.store_url),
            "kafka": KafkaResource(bootstrap_servers=world.bootstrap),
        },
    )
    result = stream_service_sensor(context)
    return {(e.asset_key, e.check_name): e for e in result.asset_events}


@pytest.mark.usefixtures("settings_for")
def test_monitor_checks_and_service_reports(world: World) -> None:
    with dg.instance_for_test() as instance:
        before = _tick(world, instance)
        assert not before[(LIVE_MEMBERSHIP, RUNNING_CHECK)].passed  # no service yet

        world.publish([event("purchase", "anon-a", timedelta(hours=1), category="luxury", price=800.0)])
        world.publish([event("page_view", f"anon-{uuid.uuid4().hex[:4]}", timedelta(minutes=1))])
        with world.service() as service:
            steps = iter(range(40))

            def stop() -> bool:
                return service.totals["events_messages"] >= 2 or next(steps) >= 39

            service.run(stop, dagster_reporter(instance), report_s=0.0)
            after = _tick(world, instance)
        assert after[(LIVE_MEMBERSHIP, RUNNING_CHECK)].passed
        assert after[(LIVE_EVENTS, ACCOUNTING_CHECK)].passed
        assert after[(LIVE_EVENTS, ACCOUNTING_CHECK)].metadata["messages"].value == 2
        landed = instance.get_latest_materialization_event(LIVE_EVENTS).asset_materialization
        assert landed.metadata["messages"].value >= 1
        joined = instance.get_latest_materialization_event(LIVE_MEMBERSHIP).asset_materialization
        assert joined.metadata["joined"].value.get("luxury_buyers") == 1
