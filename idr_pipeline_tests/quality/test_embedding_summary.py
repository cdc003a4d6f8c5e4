"""The demo summary's embedding lines come from the run's materialization metadata."""

from __future__ import annotations

from idr_pipeline.quality.summary import format_embedding_summary


def test_embedding_summary_prints_throughput_and_index_size() -> None:
    text = format_embedding_summary(
        {
            "profile_embeddings": {"dagster/row_count": 20_505, "encoded_records": 20_505,
                                   "reused_records": 0, "encoder": "chargram", "rows_per_second": 151_234.5},
            "faiss_index": {"dagster/row_count": 20_505, "index_type": "flat", "build_seconds": 0.04},
            "candidate_pairs": {"embedding_pairs": 321, "embedding_queries": 4_000},
        }
    )  # fmt: skip
    assert "20,505  (chargram; 20,505 encoded, 0 reused)" in text
    assert "151,234 profiles/s" in text or "151,235 profiles/s" in text
    assert "Faiss index                    20,505 vectors (flat" in text
    assert "321  (from 4,000 records without another candidate)" in text


def test_embedding_summary_without_the_assets_says_zero() -> None:
    assert "0 vectors" in format_embedding_summary({})
