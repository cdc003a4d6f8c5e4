"""Materialize the whole asset graph in-process, as the demo and the tests do.

Runs go through the same Definitions the UI loads, so every run, materialization and check
result is recorded in the Dagster instance and shows up in ``dagster dev`` afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.ingest.mapping import load_mappings
from idr_pipeline.settings import get_settings


@dataclass
class GraphRun:
    ingest_runs: dict[str, bool]
    resolve_success: bool
    check_results: dict[str, bool]
    # asset name -> its materialization's plain metadata values (numbers and strings)
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Each materialized asset's metadata as plain values (the last materialization wins)."""
    out: dict[str, dict[str, object]] = {}
    for ev in result.all_events:
        if ev.event_type_value != "ASSET_MATERIALIZATION":
            continue
        mat = ev.step_materialization_data.materialization
        values = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        out[mat.asset_key.to_user_string()] = {
            k: v for k, v in values.items() if isinstance(v, int | float | str)
        }
    return out


def run_config(log_level: str) -> dict:
    """Console logging at ``log_level`` for an in-process run (its events still reach the instance)."""
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """``asset:check`` -> its evaluation, for every check the run evaluated."""
    return {
        f"{data.asset_key.to_user_string()}:{data.check_name}": data
        for ev in result.all_events
        if ev.event_type_value == "ASSET_CHECK_EVALUATION"
        for data in [ev.asset_check_evaluation_data]
    }


def materialize_everything(instance: dg.DagsterInstance | None = None, log_level: str = "INFO") -> GraphRun:
    """Land every source that has a file, then run resolve_job; step-by-step events stay in the
    instance (and the UI) rather than flooding the terminal at DEBUG."""
    settings = get_settings()
    defs = load_idr_definitions()
    ingest = defs.resolve_job_def("ingest_job")
    landed: dict[str, bool] = {}
    for name, mapping in sorted(load_mappings(settings.source_mapping_path).items()):
        if not (Path(settings.landing_dir) / mapping.file).exists():
            continue
        result = ingest.execute_in_process(
            partition_key=name, instance=instance, raise_on_error=True, run_config=run_config(log_level)
        )
        landed[name] = result.success
    resolve = defs.resolve_job_def("resolve_job").execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config(log_level)
    )
    checks = {name: data.passed for name, data in check_evaluations(resolve).items()}
    if not resolve.success:
        failures = [ev.message for ev in resolve.all_events if ev.is_failure]
        raise RuntimeError("resolve_job failed:\n" + "\n".join(m or "" for m in failures))
    return GraphRun(
        ingest_runs=landed,
        resolve_success=resolve.success,
        check_results=checks,
        metadata=materialization_metadata(resolve),
    )
