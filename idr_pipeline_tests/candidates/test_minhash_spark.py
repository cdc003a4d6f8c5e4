"""The Spark LSH equals the pandas LSH: same signatures on the executors, same buckets."""

from __future__ import annotations

import random
import string

import pandas as pd

from idr_pipeline.candidates.minhash import (
    SHINGLE_COLUMNS,
    lsh_band_rows_spark,
    lsh_pairs,
    lsh_pairs_spark,
    oversized_buckets_spark,
    profile_signatures,
)


def _profiles(n_people: int, seed: int) -> pd.DataFrame:
    """People with 1-3 noisy copies, plus a shared placeholder that forms a big bucket."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase

    def typo(s: str) -> str:
        i = rng.randrange(len(s))
        return s[:i] + rng.choice(letters) + s[i + 1 :]

    rows = []
    for p in range(n_people):
        first, last = "".join(rng.choices(letters, k=6)), "".join(rng.choices(letters, k=7))
        dob = f"19{rng.randint(40, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        for c in range(rng.randint(1, 3)):
            rows.append(
                {
                    "record_id": f"r{p:03d}-{c}",
                    "first_name": typo(first) if c else first,
                    "last_name": last,
                    "email": f"{first}.{last}@mail.com" if rng.random() < 0.7 else None,
                    "email_key": None,
                    "phone": f"+1203{rng.randint(10**6, 10**7 - 1)}" if c == 0 else None,
                    "street": f"{rng.randint(1, 99)} {typo(last)} st",
                    "postcode": f"{rng.randint(10000, 99999)}",
                    "dob": dob,
                }
            )
    for i in range(6):  # identical placeholder rows: one bucket of 6 in every band
        rows.append({"record_id": f"z{i}", **dict.fromkeys(SHINGLE_COLUMNS), "first_name": "test"})
    rows.append({"record_id": "empty", **dict.fromkeys(SHINGLE_COLUMNS)})
    return pd.DataFrame(rows)


def test_spark_lsh_equals_pandas_lsh(spark):
    df = _profiles(60, seed=4)
    r, b, num_perm, seed, max_bucket = 3, 20, 64, 7, 5
    want = lsh_pairs(df.record_id, profile_signatures(df, num_perm, seed), r, b, max_bucket)
    assert want.attrs["lsh"]["skipped_buckets"] == b  # the placeholder bucket, in every band

    sdf = spark.createDataFrame(df.astype(object).where(df.notna(), None)).repartition(3)
    got = lsh_pairs_spark(sdf, r, b, num_perm, seed, max_bucket).toPandas()
    key = ["record_id_l", "record_id_r"]
    assert len(want) > 50
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True)
    )

    oversized = oversized_buckets_spark(lsh_band_rows_spark(sdf, r, b, num_perm, seed), max_bucket)
    assert oversized.count() == b and oversized.first()["size"] == 6
