"""Which behavior vectorizer should prototype segments use: hashed tokens or MiniLM?

    .venv/bin/python benchmarks/behavior_vectors.py --people 3000 --days 90

Generates the click stream of ``idr generate-events`` (same generator, same seed) without
Kafka, attributes each event to its person through the person's cookies (the truth, so the
comparison is about vectors, not about identity resolution), renders every person's last 90
days with ``behavior_texts`` on Spark, and then, for each vectorizer, assigns the catalog's
``luxury_affinity`` prototype and scores it against the generator's planted luxury buyers:

* ``observable``: planted buyers with at least one luxury purchase in the window. A buyer
  whose every visit was a page view left no luxury trace, so no vector can find them;
  recall is reported against both.
* precision / recall / F1 at the catalog's threshold (tuned for the default vectorizer), and
  at the threshold with the best F1 for that vectorizer (what it could do if re-tuned).
* seconds to vectorize the population and the prototype (model load excluded; shown apart).

The load average is printed with the timings: the box is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from idr_pipeline.core.spark import get_spark  # noqa: E402
from idr_pipeline.devtools.synthetic.clickstream import LUXURY_RATE, _world, generate_event_stream  # noqa: E402
from idr_pipeline.segments.behavior import (
    BEHAVIOR_DAYS,
    BehaviorVectors,
    behavior_texts,
    prototype_vector,
    token_vectors,
    vectorize,
)
from idr_pipeline.segments.dsl import PrototypeSegment  # noqa: E402
from idr_pipeline.segments.steps import load_catalog  # noqa: E402

UNTIL = datetime(2025, 6, 1, tzinfo=UTC)
VARIANTS: dict[str, dict] = {
    "tokens": {"vectorizer": "tokens"},
    "minilm": {"vectorizer": "minilm", "quantize": False},
    "minilm-int8": {"vectorizer": "minilm", "quantize": True},
}


def person_events(people: int, days: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Parsed events with the person who made them, and the planted luxury flag per person."""
    stream = generate_event_stream(people, days, seed=seed, until=UNTIL)
    folks = _world(people, seed).people
    owner = {str(a): i for i, a in enumerate(folks.anon) if a}
    owner.update({str(a): i for i, a in enumerate(folks.anon2) if a})
    rows = []
    for msg in stream.events:
        try:
            obj = json.loads(msg.value)
            ts = datetime.fromisoformat(obj["ts"].replace("Z", "+00:00"))
            person = owner.get(obj.get("anonymous_id", ""))
            props = obj.get("properties") or {}
            row = (obj["event_id"], obj["type"], ts, props.get("category"), props.get("campaign"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # the ~1% malformed messages the landing step dead-letters
        if person is not None and ts < UNTIL:
            rows.append((f"p{person:07d}", *row))
    luxury = np.random.default_rng([seed, 50]).random(people) < LUXURY_RATE  # the generator's first draw
    cols = ["identity_id", "event_id", "type", "ts", "category", "campaign"]
    return pd.DataFrame(rows, columns=cols).drop_duplicates("event_id"), luxury


def prf(pred: set[str], truth: set[str]) -> tuple[float, float, float]:
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(truth) if truth else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_threshold(scores: np.ndarray, ids: np.ndarray, truth: set[str]) -> tuple[float, float, float, float]:
    best = (0.0, 0.0, 0.0, 0.0)
    for t in np.unique(np.round(scores, 3)):
        p, r, f = prf(set(ids[scores >= t]), truth)
        if f > best[3]:
            best = (float(t), p, r, f)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()

    segment = load_catalog().by_id()["luxury_affinity"]
    assert isinstance(segment, PrototypeSegment)
    events, luxury = person_events(args.people, args.days, args.seed)
    spark = get_spark()
    sdf = spark.createDataFrame(
        events,
        "identity_id string, event_id string, type string, ts timestamp, category string, campaign string",
    )
    texts = behavior_texts(sdf, UNTIL, BEHAVIOR_DAYS).toPandas().sort_values("identity_id")
    ids = texts["identity_id"].to_numpy()
    planted = {f"p{i:07d}" for i in np.flatnonzero(luxury)}
    recent = events[events["ts"] >= pd.Timestamp(UNTIL) - pd.Timedelta(days=BEHAVIOR_DAYS)]
    observable = set(
        recent.loc[(recent["type"] == "purchase") & (recent["category"] == "luxury"), "identity_id"]
    )
    observable &= planted
    print(
        f"people {args.people}, days {args.days}, events {len(events)}, identities with a behavior text "
        f"{len(ids)}, planted luxury {len(planted)} (with a text {len(planted & set(ids))}, observable {len(observable)})"
    )
    print(
        f"prototype {segment.id}: {[segment.description, *segment.examples]}, threshold {segment.threshold}"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")

    header = (
        f"{'vectorizer':<12} {'load s':>7} {'vector s':>8} {'@thr P':>7} {'R obs':>6} {'R all':>6} {'F1':>5}"
        f" | {'best thr':>8} {'P':>5} {'R obs':>6} {'F1':>5}"
    )
    print(header)
    print("-" * len(header))
    for name in args.variants.split(","):
        kwargs = dict(VARIANTS[name])
        vectorizer = kwargs.pop("vectorizer")
        t0 = time.perf_counter()
        if vectorizer == "minilm":
            vectorize(["warm up"], vectorizer, **kwargs)  # model load, reported apart
        t1 = time.perf_counter()
        vectors = BehaviorVectors(
            list(ids),
            texts["text"].tolist(),
            vectorize(list(texts["text"]), vectorizer, **kwargs),
            vectorizer,
        )
        scores = vectors.scores(prototype_vector(segment, vectorizer, **kwargs))
        t2 = time.perf_counter()
        chosen = set(ids[scores >= segment.threshold])
        p, r_obs, f = prf(chosen, observable)
        r_all = len(chosen & planted) / len(planted) if planted else 0.0
        bt, bp, br, bf = best_threshold(scores, ids, observable)
        print(
            f"{name:<12} {t1 - t0:>7.1f} {t2 - t1:>8.2f} {p:>7.3f} {r_obs:>6.3f} {r_all:>6.3f} {f:>5.3f}"
            f" | {bt:>8.3f} {bp:>5.3f} {br:>6.3f} {bf:>5.3f}"
        )

    # What each catalog prototype would take of this population with the default vectorizer:
    # the numbers its expected_size bounds are set from.
    tokens = token_vectors(list(texts["text"]))
    vectors = BehaviorVectors(list(ids), texts["text"].tolist(), tokens, "tokens")
    print("\ncatalog prototypes with tokens, share of identities with a behavior text:")
    for proto in load_catalog().segments:
        if isinstance(proto, PrototypeSegment):
            scores = vectors.scores(prototype_vector(proto, "tokens"))
            n = int((scores >= proto.threshold).sum())
            print(f"  {proto.id:<20} threshold {proto.threshold:.2f}: {n:>5} ({n / max(1, len(ids)):.3f})")


if __name__ == "__main__":
    main()
