"""The run summary the demo prints: what came in, what was rejected, what came out, how good."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

from idr_pipeline.core.catalog import LINKS, QUARANTINE
from idr_pipeline.core.lake import Lake
from idr_pipeline.quality.accounting import RowAccount, row_account
from idr_pipeline.quality.accuracy import PairwiseScores, score_clusters


@dataclass
class RunSummary:
    account: RowAccount
    top_reasons: pd.DataFrame
    identities: int
    largest_cluster: int
    scores: PairwiseScores | None


def summarize(lake: Lake, truth_path: str | Path | None) -> RunSummary:
    acc = row_account(lake)
    reasons = (
        lake.read_latest(*QUARANTINE)
        .groupBy(F.regexp_extract("_reason", r"^([^:]+)", 1).alias("reason"))
        .count()
        .orderBy(F.desc("count"))
        .limit(5)
        .toPandas()
    )
    links = lake.read_latest(*LINKS).select("record_id", "identity_id").toPandas()
    sizes = links.groupby("identity_id").size()
    scores = None
    if truth_path and Path(truth_path).exists():
        truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False)
        scores = score_clusters(links, truth)
    return RunSummary(
        account=acc,
        top_reasons=reasons,
        identities=int(sizes.size),
        largest_cluster=int(sizes.max()) if sizes.size else 0,
        scores=scores,
    )


def format_summary(s: RunSummary) -> str:
    a = s.account
    lines = [
        f"records in (raw rows)      {a.raw:>10,}",
        f"  clean                    {a.clean:>10,}",
        f"  quarantined              {a.quarantined:>10,}  ({a.quarantined / max(a.raw, 1):.2%})",
        f"  collapsed duplicates     {a.collapsed:>10,}",
        f"  accounting balanced      {'yes' if a.balanced else 'NO'}",
        "top quarantine reasons:",
        *[f"  {r.reason:<32} {r['count']:>8,}" for _, r in s.top_reasons.iterrows()],
        f"identities out             {s.identities:>10,}",
        f"largest cluster            {s.largest_cluster:>10,} records",
    ]
    if s.scores:
        sc = s.scores
        lines += [
            f"pairwise precision         {sc.precision:>10.4f}",
            f"pairwise recall            {sc.recall:>10.4f}",
            f"pairwise F1                {sc.f1:>10.4f}",
            f"B-cubed F1                 {sc.bcubed_f1:>10.4f}",
            f"  (scored records {sc.records:,}; true pairs {sc.true_pairs:,}; predicted pairs {sc.predicted_pairs:,})",
        ]
    return "\n".join(lines)


def format_embedding_summary(metadata: Mapping[str, Mapping[str, object]]) -> str:
    """The embedding lines of the demo summary, from the run's ``profile_embeddings`` and
    ``faiss_index`` materialization metadata (absent values print as 0)."""
    emb = metadata.get("profile_embeddings", {})
    idx = metadata.get("faiss_index", {})
    cands = metadata.get("candidate_pairs", {})

    def num(values: Mapping[str, object], key: str) -> float:
        value = values.get(key, 0)
        return float(value) if isinstance(value, int | float) else 0.0

    return "\n".join(
        [
            f"profiles embedded          {int(num(emb, 'dagster/row_count')):>10,}  "
            f"({emb.get('encoder', '?')}; {int(num(emb, 'encoded_records')):,} encoded, "
            f"{int(num(emb, 'reused_records')):,} reused)",
            f"embedding throughput       {num(emb, 'rows_per_second'):>10,.0f} profiles/s",
            f"Faiss index                {int(num(idx, 'dagster/row_count')):>10,} vectors "
            f"({idx.get('index_type', '?')}, built in {num(idx, 'build_seconds'):.2f} s)",
            f"embedding candidate pairs  {int(num(cands, 'embedding_pairs')):>10,}  "
            f"(from {int(num(cands, 'embedding_queries')):,} records without another candidate)",
        ]
    )
