"""identity_change_feed: the identity changes the store committed, published to Kafka."""

import dagster as dg
import pandas as pd

from idr_pipeline.core.reporting import markdown_table
from idr_pipeline.defs.platform.resources import KafkaResource, StoreResource
from idr_pipeline.settings import get_settings
from idr_pipeline.stream.change_feed import publish_pending_changes


@dg.asset(
    deps=["served_identities", "stitched_identities"],
    group_name="serving",
    kinds={"kafka"},
    # Runs after every publish of the store and every stitching run, outside resolve_job: a broker outage fails this
    # asset alone, the store's publish stands, and the unsent changes wait in identity_changes
    # for the next run (erasures' changes too, when the API could not send them itself).
    # Without the missing-deps guard: a deployment that streams nothing never materializes
    # stitched_identities, and the feed must still follow each publish.
    automation_condition=dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing()),
    description=(
        "One message per identity change (created, split_from, merged_into, updated, retired, erased) "
        "on the identity changes topic, keyed by identity id; sent once the store committed it."
    ),
)
def identity_change_feed(store: StoreResource, kafka: KafkaResource) -> dg.MaterializeResult:
    topic = get_settings().identity_changes_topic
    with store.open() as st:
        stats = publish_pending_changes(st, kafka.bootstrap_servers, topic)
    return dg.MaterializeResult(
        metadata={
            "topic": topic,
            "published": stats.published,
            **{f"published_{kind}": n for kind, n in stats.by_kind.items()},
            "preview": dg.MetadataValue.md(
                markdown_table(
                    pd.DataFrame({"kind": list(stats.by_kind), "published": list(stats.by_kind.values())})
                )
            ),
        }
    )
