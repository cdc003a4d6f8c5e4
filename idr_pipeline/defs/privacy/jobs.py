"""The lake purge an erasure asks for: a job, and a sensor that starts it for pending requests.

The API records each erasure's purge request in the store; ``erasure_purge_sensor`` sees the
open requests and starts ``erasure_purge_job``, which rewrites the lake without the erased
people's rows (``idr_pipeline.privacy.purge``). The sensor runs by default, so an erasure
reaches the lake while the Dagster daemon runs without anyone switching it on.
"""

import hashlib
from pathlib import Path

import dagster as dg

from idr_pipeline.core.secrets import tombstone_key
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig, StoreResource
from idr_pipeline.privacy.purge_requests import pending_request_ids, run_pending_purges
from idr_pipeline.settings import get_settings
from idr_pipeline.store import open_store, parse_store_url


@dg.op(
    description="Rewrite every lake dataset without the rows of the people erased since the last purge.",
    out=dg.Out(dict, description="The purge's counts (empty when no request was open)."),
)
def purge_erased_subjects(
    context: dg.OpExecutionContext, lake: LakeResource, store: StoreResource, pipeline_config: PipelineConfig
) -> dg.Output:
    with store.open() as st:
        counts = run_pending_purges(
            st,
            lake.uri,
            pipeline_config.mappings(),
            pipeline_config.default_phone_region,
            tombstone_key(get_settings()),
        )
    if not counts:
        context.log.info("no purge request is open")
    return dg.Output(
        counts,
        metadata={
            "requests": counts.get("requests", 0),
            "rows_removed_total": counts.get("rows_removed_total", 0),
            "files_rewritten": counts.get("files_rewritten", 0),
            "rows_removed": dg.MetadataValue.json(counts.get("rows_removed", {})),
        },
    )


@dg.job(
    description="Purge erased people from the lake (raw, clean, matching, resolution, serving, features)."
)
def erasure_purge_job() -> None:
    purge_erased_subjects()


@dg.sensor(job=erasure_purge_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def erasure_purge_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One run for the purge requests open now (the run key is their ids, so a run is not
    requested twice for the same set)."""

    url = get_settings().store_url
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite" and (parsed.path == ":memory:" or not Path(parsed.path).exists()):
        return dg.SkipReason("the store does not exist yet")  # and is not created by looking
    with open_store(url) as st:
        st.ensure_schema()
        ids = pending_request_ids(st)
    if not ids:
        return dg.SkipReason("no purge request is open")
    run_key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key)])
