"""Checks on audiences: every segment's share of active identities within its expected bounds."""

import dagster as dg
import pandas as pd

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.resources import StoreResource
from idr_pipeline.segments.steps import check_segment_sizes, load_catalog


@dg.asset_check(
    asset="audience_segments",
    description="each segment's share of active identities is within its expected_size bounds",
)
def segment_sizes_within_bounds(store: StoreResource) -> dg.AssetCheckResult:
    catalog = load_catalog()
    with store.open() as st:
        universe = st.count_rows("identities", {"status": "active"})
        sizes = {r["segment_id"]: r["member_count"] for r in st.select_rows("segments")}
    checks = check_segment_sizes(sizes, universe, catalog)
    table = pd.DataFrame(
        [(c.segment_id, c.members, c.share, c.min_share, c.max_share, c.ok) for c in checks],
        columns=["segment", "members", "share", "min_share", "max_share", "ok"],
    )
    failing = [c.segment_id for c in checks if not c.ok]
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "active_identities": universe,
            "out_of_bounds": ", ".join(failing) or "-",
            "sizes": dg.MetadataValue.md(markdown_table(table, max_rows=100)),
        },
    )
