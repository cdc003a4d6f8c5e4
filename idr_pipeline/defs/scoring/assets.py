"""match_model and scored_pairs."""

import dagster as dg
import pandas as pd
from dagster_pyspark import PySparkResource

from idr_pipeline.core.reporting import bar_chart_png, markdown_table, png_markdown
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig
from idr_pipeline.scoring.steps import run_match_model, run_scoring


@dg.asset(
    pool=SPARK_POOL,
    deps=["candidate_pairs"],
    group_name="scoring",
    kinds={"python"},
    description="Fellegi-Sunter m/u per comparison level: u from random pairs, m and the prior by EM; no labels.",
)
def match_model(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    model = run_match_model(spark, lake.lake(spark), pipeline_config.match_config())
    summary = model.summary_frame()
    labels = [f"{r.comparison}: {r.level_label}" for r in summary.itertuples()]
    chart = bar_chart_png(
        labels, summary["weight"].round(2).tolist(), "Match weights", "level", "log2 Bayes factor"
    )
    return dg.MaterializeResult(
        metadata={
            "prior": float(model.prior),
            "weights_chart": dg.MetadataValue.md(png_markdown(chart, "match weights")),
            "parameters": dg.MetadataValue.md(markdown_table(summary.round(5), max_rows=80)),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=["match_model", "candidate_pairs"],
    group_name="scoring",
    kinds={"parquet"},
    description="Match probability and per-comparison weights for every candidate pair.",
)
def scored_pairs(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    stats = run_scoring(spark, lake.lake(spark), pipeline_config.match_config())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.pairs,
            "above_threshold": stats.above_threshold,
            "threshold": pipeline_config.match_threshold,
            "probability_histogram": dg.MetadataValue.md(markdown_table(pd.DataFrame(stats.histogram))),
        }
    )
