"""The demo reads each asset's materialization metadata from the run it launched."""

from __future__ import annotations

import dagster as dg

from idr_pipeline.devtools.dagster_runs import materialization_metadata


@dg.asset
def counted() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 5,
            "rows_per_second": 12.5,
            "encoder": "chargram",
            "table": dg.MetadataValue.md("| a |"),
        }
    )


def test_materialization_metadata_gives_plain_values_per_asset() -> None:
    result = dg.materialize([counted], instance=dg.DagsterInstance.ephemeral())
    assert materialization_metadata(result) == {
        "counted": {"dagster/row_count": 5, "rows_per_second": 12.5, "encoder": "chargram", "table": "| a |"}
    }
