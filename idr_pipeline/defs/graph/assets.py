"""identity_edges and identity_graph."""

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import bar_chart_png, markdown_table, png_markdown, size_histogram
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig, StoreResource
from idr_pipeline.graph.steps import run_clustering, run_edges, run_graph
from idr_pipeline.store.decisions import load_decisions


@dg.asset(
    pool=SPARK_POOL,
    deps=["clean_profiles"],
    group_name="graph",
    kinds={"spark", "parquet"},
    description="Links between records sharing a normalized strong identifier, minus blocklisted and shared values.",
)
def identity_edges(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    stats = run_edges(
        spark, lake.lake(spark), pipeline_config.blocklist(), pipeline_config.max_people_per_identifier
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.edges,
            "linked_records": stats.linked_records,
            "edges_by_identifier": dg.MetadataValue.md(markdown_table(stats.edges_by_type)),
            "not_identity_values": dg.MetadataValue.md(markdown_table(stats.not_identity, max_rows=30)),
            "most_shared_values": dg.MetadataValue.md(markdown_table(stats.shared_preview)),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=["scored_pairs", "clean_profiles"],
    group_name="graph",
    kinds={"spark", "parquet"},
    description="record_id -> identity_id from constrained clustering of scored pairs; ids are stable "
    "across runs and merges keep the oldest id.",
)
def identity_graph(
    pyspark: PySparkResource, lake: LakeResource, store: StoreResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    lk = lake.lake(spark)
    decisions = load_decisions(store.url)
    clusters = run_clustering(spark, lk, pipeline_config.match_config(), decisions)
    stats = run_graph(spark, lk, components=clusters.components)
    hist = size_histogram(stats.cluster_sizes)
    chart = bar_chart_png(
        hist["size"].tolist(),
        hist["identities"].tolist(),
        "Cluster sizes",
        "records per identity",
        "identities",
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.records,
            "identities": stats.identities,
            "largest_cluster": stats.largest_cluster,
            "propagation_rounds": stats.rounds,
            "merges_this_run": stats.new_merges,
            "links_kept": len(clusters.kept),
            "merges_refused": dg.MetadataValue.json(clusters.refused_counts),
            "possible_matches": dg.MetadataValue.json(clusters.possible_counts),
            "ambiguous_records": clusters.ambiguous_records,
            "steward_decisions": dg.MetadataValue.json(decisions["decision"].value_counts().to_dict()),
            "cluster_size_histogram": dg.MetadataValue.md(
                png_markdown(chart, "cluster size histogram") + "\n\n" + markdown_table(hist, max_rows=20)
            ),
            "largest_cluster_preview": dg.MetadataValue.md(markdown_table(stats.largest_preview)),
        }
    )
