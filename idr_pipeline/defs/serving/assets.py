"""served_identities: the resolved identities, loaded into the serving store, with the identity
changes the load makes recorded beside them."""

import dagster as dg
import pandas as pd
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, StoreResource
from idr_pipeline.store.steps import serve_with_changes


@dg.asset(
    pool=SPARK_POOL,
    deps=["resolved_profiles", "identity_graph"],
    group_name="serving",
    kinds={"sqlite", "singlestore"},
    description=(
        "Identities, record links, golden profiles, identifier look-ups and merge history in the store, "
        "and the identity changes the load made (identity_changes)."
    ),
)
def served_identities(
    pyspark: PySparkResource, lake: LakeResource, store: StoreResource
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    with store.open() as st:
        stats, changes = serve_with_changes(
            lake.lake(spark), st, store.publish_commit_rows, store.publish_nice
        )
        backend = st.backend_name
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.table_counts.get("identities", 0),
            "backend": backend,
            "store": store.redacted_url(),
            **{f"changed_{k}": v for k, v in stats.changed.items()},
            **{f"rows_{k}": v for k, v in stats.table_counts.items()},
            "change_run_id": changes.run_id,
            **{f"identity_changes_{kind}": n for kind, n in changes.by_kind.items()},
            "identity_changes_committed": changes.committed,
            "preview": dg.MetadataValue.md(
                markdown_table(
                    pd.DataFrame(
                        {
                            "table": list(stats.table_counts),
                            "rows": list(stats.table_counts.values()),
                            "changed this load": [stats.changed.get(t, 0) for t in stats.table_counts],
                        }
                    )
                )
            ),
        }
    )
