"""How runs launched from the UI, a schedule or a sensor execute: one process, one Spark session."""

from __future__ import annotations

import dagster as dg

from idr_pipeline.definitions import load_idr_definitions
from idr_pipeline.defs.platform.execution import SPARK_POOL


def test_every_job_of_the_code_location_runs_its_steps_in_process():
    defs = load_idr_definitions()
    jobs = [
        defs.resolve_job_def(name) for name in ("resolve_job", "ingest_job", "segments_job", "stitch_job")
    ]
    # The implicit job behind the UI's "Materialize" buttons, too.
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    assert {job.name: job.executor_def.name for job in jobs} == {job.name: "in_process" for job in jobs}


def test_every_spark_asset_and_check_is_in_the_spark_pool():
    defs = load_idr_definitions()
    spark_nodes = [
        node
        for node in [*defs.assets, *defs.asset_checks]
        if isinstance(node, dg.AssetsDefinition) and "pyspark" in node.required_resource_keys
    ]
    assert len(spark_nodes) >= 15
    assert {node.node_def.name: node.node_def.pool for node in spark_nodes} == {
        node.node_def.name: SPARK_POOL for node in spark_nodes
    }
