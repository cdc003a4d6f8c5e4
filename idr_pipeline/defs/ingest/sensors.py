"""Land a source as soon as its file changes in the landing folder."""

import json
from pathlib import Path

import dagster as dg

from idr_pipeline.defs.ingest.partitions import source_partitions
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.settings import get_settings

ingest_job = dg.define_asset_job(
    "ingest_job", selection=dg.AssetSelection.assets("raw_profiles"), partitions_def=source_partitions
)


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Cursor holds each source file's (size, mtime) fingerprint; a change requests one run."""
    settings = get_settings()
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for name, mapping in load_mappings(settings.source_mapping_path).items():
        path = Path(settings.landing_dir) / mapping.file
        if not path.exists():
            continue
        stat = path.stat()
        fingerprint = f"{stat.st_size}-{stat.st_mtime_ns}"
        if seen.get(name) != fingerprint:
            requests.append(dg.RunRequest(run_key=f"{name}:{fingerprint}", partition_key=name))
            seen[name] = fingerprint
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))
