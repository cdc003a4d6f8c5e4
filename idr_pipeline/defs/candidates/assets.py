"""profile_embeddings, faiss_index and candidate_pairs."""

from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource

from idr_pipeline.candidates.minhash import s_curve_png
from idr_pipeline.candidates.steps import run_candidates, run_embeddings, run_faiss_index
from idr_pipeline.core.reporting import markdown_table, png_markdown
from idr_pipeline.defs.platform.execution import SPARK_POOL
from idr_pipeline.defs.platform.resources import LakeResource, PipelineConfig


@dg.asset(
    pool=SPARK_POOL,
    deps=["clean_profiles", "identity_edges"],
    group_name="candidates",
    kinds={"numpy", "parquet"},
    description="Embeddings of every clean profile (IDR_EMBED_POLICY, IDR_EMBED_ENCODER), keyed by a hash "
    "of the profile text so a re-run encodes only new and changed profiles.",
)
def profile_embeddings(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    stats = run_embeddings(
        spark,
        lake.lake(spark),
        pipeline_config.embed_policy,
        pipeline_config.embed_max_records,
        pipeline_config.profile_encoder(),
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.embedded,
            "encoded_records": stats.encoded,
            "reused_records": stats.embedded - stats.encoded,
            "eligible_records": stats.eligible,
            "policy": stats.policy,
            "encoder": stats.encoder,
            "encode_seconds": round(stats.seconds, 2),
            "rows_per_second": round(stats.profiles_per_second, 1),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=["profile_embeddings"],
    group_name="candidates",
    kinds={"faiss"},
    description="Faiss index over the embeddings (exact below a size bound, IVF above) with its record-id map.",
)
def faiss_index(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    info = run_faiss_index(lake.lake(pyspark.spark_session), pipeline_config.index_dir)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(info["vectors"]),
            "index_type": str(info["index_type"]),
            "build_seconds": round(float(info["seconds"]), 2),
            "path": dg.MetadataValue.path(str(info["path"])),
        }
    )


@dg.asset(
    pool=SPARK_POOL,
    deps=["clean_profiles", "identity_edges", "faiss_index"],
    group_name="candidates",
    kinds={"parquet"},
    description="Candidate pairs from deterministic keys, MinHash-LSH and the Faiss neighbors of the records "
    "those leave without a candidate (IDR_EMBED_NEIGHBORS), with a blocking report.",
)
def candidate_pairs(
    pyspark: PySparkResource, lake: LakeResource, pipeline_config: PipelineConfig
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    config = pipeline_config.match_config()
    truth = Path(pipeline_config.landing_dir) / "truth.csv"
    stats = run_candidates(
        spark,
        lake.lake(spark),
        pipeline_config.index_dir,
        config,
        truth,
        neighbor_floor=pipeline_config.profile_encoder().neighbor_floor,
    )
    choice = stats.band_choice
    metadata = {
        "dagster/row_count": int(stats.counts.loc[stats.counts.generator == "union", "pairs"].iloc[0]),
        "pairs_by_generator": dg.MetadataValue.md(markdown_table(stats.counts)),
        "lsh_rows_per_band": choice.r,
        "lsh_bands": choice.b,
        "lsh_s_curve": dg.MetadataValue.md(
            png_markdown(s_curve_png(choice, config.lsh_threshold), "MinHash s-curve")
            + f"\n\nr = {choice.r}, b = {choice.b}, effective threshold {choice.effective_threshold:.3f}, "
            f"false-positive area {choice.fp_area:.4f}, threshold error {choice.threshold_error:.4f}"
        ),
        **{k: v for k, v in stats.stats.items() if isinstance(v, int)},
    }
    if stats.report is not None:
        metadata["blocking_report"] = dg.MetadataValue.md(markdown_table(stats.report, max_rows=20))
    return dg.MaterializeResult(metadata=metadata)
