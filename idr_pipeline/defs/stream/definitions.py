"""Everything the streaming folder contributes to the code location."""

import dagster as dg

from idr_pipeline.defs.platform.resources import build_resources
from idr_pipeline.defs.stream.assets import stream_assets, topic_assets
from idr_pipeline.defs.stream.live import live_assets, live_checks, stream_service_sensor
from idr_pipeline.defs.stream.sensors import stream_jobs, stream_sensors


def _streaming(resources: dict[str, object] | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*topic_assets, *stream_assets, *live_assets],
        asset_checks=live_checks,
        jobs=list(stream_jobs.values()),
        sensors=[*stream_sensors, stream_service_sensor],
        resources=resources,
    )


@dg.definitions
def streaming() -> dg.Definitions:
    return _streaming()


def standalone_streaming_definitions() -> dg.Definitions:
    """The streaming part alone, with the resources it needs (kafka, lake, store) from the settings.

    For the streaming tests and the benchmark, so that they exercise exactly this folder and
    do not depend on the state of the rest of the code location.
    """

    all_resources = build_resources()
    return _streaming({k: all_resources[k] for k in ("kafka", "lake", "store")})
