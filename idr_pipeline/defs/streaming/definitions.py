"""Everything the streaming folder contributes to the code location."""

import dagster as dg

from idr_pipeline.defs.streaming.assets import stream_assets, topic_assets
from idr_pipeline.defs.streaming.sensors import stream_jobs, stream_sensors


@dg.definitions
def streaming() -> dg.Definitions:
    return dg.Definitions(
        assets=[*topic_assets, *stream_assets], jobs=list(stream_jobs.values()), sensors=stream_sensors
    )
