"""Splink 5 (DuckDB backend) over one prepared dataset, in its own process.

    .venv-bench/bin/python benchmarks/splink_runner.py DATASET_DIR OUT.csv [--threshold P]
        [--pairs PAIRS.parquet] [--synthetic-model competent|tutorial]

Writes ``record_id,cluster_id``. Its own process so that the harness can measure its wall time
and peak memory exactly as it does ``idr resolve``'s, from start-up to the file on disk. With
``--pairs`` it also writes every scored pair at match probability >= ``PAIRS_FLOOR``
(``record_id_l, record_id_r, match_probability``), from which the harness clusters at other
thresholds to find the best one in hindsight, and ``PAIRS.json`` with the seconds the export
took (the harness takes them off Splink's wall time). The runner never sees the truth.

FEBRL models are Splink's own examples (``docs/demos/examples/duckdb/`` in
moj-analytical-services/splink), copied rather than tuned. Chart and evaluation cells are left
out; only the calls that change the model or the clusters are kept, in the notebooks' order and
with their arguments.

* ``febrl3`` (FEBRL1-3, dedupe): ``febrl3.ipynb``: blocking, comparisons, deterministic rules
  at recall 0.9, u from 1e6 pairs (seed 2), EM on date_of_birth then postcode, predict at 0.2.
  That notebook stops at pairwise scores, so clusters use the febrl4 example's 0.99.
* ``febrl4`` (link A to B): ``febrl4.ipynb``'s "detailed" model, deterministic rules at recall
  0.8, u from 1e6 pairs, EM on date_of_birth and postcode without TF, predict at 0.2, cluster
  at 0.99.

The other models are what a competent Splink user builds from the documentation for data
Splink has no example of, following its guidance: every field the data has, compared with the
library's comparison for that kind of field; term-frequency adjustments on exact matches of
values whose frequency varies (names, cities, shared identifiers); u from random sampling; the
probability of a match from deterministic rules; EM sessions blocked on fields that leave
between 1% and 99% matches and whose m values therefore converge, each session estimating the
fields it does not block on; clusters at 0.95, the threshold of Splink's examples.

* ``synthetic`` (the generator, dedupe; the default): first name and surname
  (``NameComparison``: exact with TF, Jaro-Winkler 0.92/0.88/0.7), date of birth
  (``DateOfBirthComparison``), e-mail (``EmailComparison``), phone (exact with TF, one edit),
  street and postcode as ONE comparison (both exact; street Jaro-Winkler 0.9 and postcode
  exact; street exact; postcode exact; else: two fields of one fact, not two independent
  pieces of evidence), city, IP, device id (exact with TF), national id (exact, one edit),
  anonymous id (exact). Predictions blocked on names, dob, postcode and every identifier (not
  on IP: carrier IPs are shared by thousands). u from 1e7 random pairs, match probability from
  deterministic rules at recall 0.7, EM blocked on dob, then on phone.
* ``synthetic_tutorial`` (``--synthetic-model tutorial``): the earlier baseline, the comparisons
  of the fake_1000 tutorial (``04_Estimating_model_parameters``) with the dob and blocking of
  ``deduplicate_50k_synthetic.ipynb``, postcode ExactMatch with TF, EM on first name + surname
  then dob. It leaves out phone, street, IP and device, and its EM on first name + surname
  collapses at scale; kept for comparison with earlier results.
* ``rldata`` (RLdata500/10000: names and a date of birth): first name and last name
  (``NameComparison``), ``DateOfBirthComparison``; blocked on first name, last name, dob; match
  probability from deterministic rules that allow one fuzzy field (every duplicate carries an
  error); EM on dob, then first + last name.
* ``patentsview`` (inventor mentions: names and a location): first and last name
  (``NameComparison``), city (Jaro-Winkler 0.9, TF), state and country (exact, TF); blocked on
  first + last name and on first initial + last name + city; EM on first + last name, then on
  last name + city.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

# Scored pairs exported for the harness's threshold sweep: everything Splink calls more likely a
# match than not.
PAIRS_FLOOR = 0.5

# Canonical column -> the name the followed notebook uses.
FEBRL_COLUMNS = {
    "record_id": "rec_id",
    "first_name": "given_name",
    "last_name": "surname",
    "dob": "date_of_birth",
    "national_id": "soc_sec_id",
    "postcode": "postcode",
    "state": "state",
    "street_number": "street_number",
    "address_1": "address_1",
}
SYNTHETIC_COLUMNS = {
    "record_id": "unique_id",
    "first_name": "first_name",
    "last_name": "surname",
    "dob": "dob",
    "city": "city",
    "email": "email",
    "postcode": "postcode",
}
COMPETENT_COLUMNS = {
    **SYNTHETIC_COLUMNS,
    "phone": "phone",
    "street": "street",
    "ip_address": "ip_address",
    "device_id": "device_id",
    "national_id": "national_id",
    "anonymous_id": "anonymous_id",
}
RLDATA_COLUMNS = {
    "record_id": "unique_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "dob": "dob",
}
PATENTSVIEW_COLUMNS = {
    "record_id": "unique_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "city": "city",
    "state": "state",
    "country": "country",
}


def _load(con: duckdb.DuckDBPyConnection, path: Path, columns: dict[str, str]) -> duckdb.DuckDBPyRelation:
    """Every column as text: FEBRL postcodes and ids have leading zeros that a number drops."""
    select = ", ".join(f'"{src}" as "{dst}"' for src, dst in columns.items())
    return con.sql(f"select {select} from read_csv('{path}', all_varchar = true, header = true)")


def febrl3_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    blocking_rules = [
        block_on("soc_sec_id"),
        block_on("given_name"),
        block_on("surname"),
        block_on("date_of_birth"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(db_api.register(tables[0]), settings)
    deterministic_rules = [
        block_on("soc_sec_id"),
        block_on("given_name", "surname", "date_of_birth"),
        "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
    ]
    linker.training.estimate_probability_two_random_records_match(deterministic_rules, recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    return linker


def febrl4_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    blocking_rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d", invalid_dates_as_null=True
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker([db_api.register(t) for t in tables], settings)
    deterministic_rules = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
    linker.training.estimate_probability_two_random_records_match(deterministic_rules, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("postcode"), estimate_without_term_frequencies=True
    )
    return linker


def _tf(comparison):
    """The comparison with term-frequency adjustments on its exact-match level."""
    return comparison.configure(term_frequency_adjustments=True)


def address_comparison() -> cl.CustomComparison:
    """Street, postcode and city as one comparison: they describe one place, so agreeing
    fields are one piece of evidence, not independent ones (a shared postcode nearly always
    means a shared city). Levels from the most specific; the city level has TF, since big
    cities say less than small ones."""
    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="street, postcode and city",
        comparison_levels=[
            cll.And(cll.NullLevel("street"), cll.NullLevel("postcode"), cll.NullLevel("city")),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("postcode")).configure(
                label_for_charts="street and postcode exact"
            ),
            cll.And(cll.JaroWinklerLevel("street", 0.9), cll.ExactMatchLevel("postcode")).configure(
                label_for_charts="street Jaro-Winkler >= 0.9, postcode exact"
            ),
            cll.ExactMatchLevel("street").configure(label_for_charts="street exact, postcode not"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="postcode exact, street not"),
            cll.ExactMatchLevel("city").configure(
                label_for_charts="city exact, postcode and street not", tf_adjustment_column="city"
            ),
            cll.ElseLevel(),
        ],
    )


def synthetic_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    blocking_rules = [
        block_on("first_name", "surname"),
        block_on("surname", "dob"),
        block_on("first_name", "dob"),
        block_on("postcode", "surname"),
        block_on("postcode", "first_name"),
        block_on("postcode", "dob"),
        block_on("street", "postcode"),
        block_on("email"),
        block_on("phone"),
        block_on("national_id"),
        block_on("device_id"),
        block_on("anonymous_id"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            _tf(cl.DamerauLevenshteinAtThresholds("phone", [1])),
            address_comparison(),
            _tf(cl.ExactMatch("ip_address")),
            _tf(cl.ExactMatch("device_id")),
            cl.ExactMatch("national_id"),
            cl.ExactMatch("anonymous_id"),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(db_api.register(tables[0]), settings)
    deterministic_rules = [
        block_on("first_name", "surname", "dob"),
        block_on("email"),
        block_on("national_id"),
    ]
    linker.training.estimate_probability_two_random_records_match(deterministic_rules, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    return linker


def rldata_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("first_name"),
            block_on("last_name"),
            block_on("dob"),
        ],
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(db_api.register(tables[0]), settings)
    # Every RLdata duplicate carries an error, so exact agreement on all three fields finds
    # almost none; the rules allow one fuzzy field, as Splink's deterministic-rule docs show.
    linker.training.estimate_probability_two_random_records_match(
        [
            "l.first_name = r.first_name and l.last_name = r.last_name and levenshtein(l.dob, r.dob) <= 1",
            "l.dob = r.dob and jaro_winkler_similarity(l.first_name, r.first_name) >= 0.9"
            " and jaro_winkler_similarity(l.last_name, r.last_name) >= 0.9",
        ],
        recall=0.9,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    return linker


def patentsview_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"),
            block_on("substr(first_name, 1, 1)", "last_name", "city"),
        ],
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            _tf(cl.JaroWinklerAtThresholds("city", [0.9])),
            _tf(cl.ExactMatch("state")),
            _tf(cl.ExactMatch("country")),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(db_api.register(tables[0]), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "city")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("last_name", "city"))
    return linker


def synthetic_tutorial_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
    blocking_rules = [
        block_on("substr(first_name,1,3)", "substr(surname,1,4)"),
        block_on("surname", "dob"),
        block_on("first_name", "dob"),
        block_on("postcode", "first_name"),
        block_on("postcode", "surname"),
        block_on("dob", "city"),
        block_on("substr(postcode,1,3)", "dob"),
        block_on("substr(postcode,1,3)", "first_name"),
        block_on("substr(postcode,1,3)", "surname"),
        block_on("substr(first_name,1,2)", "substr(surname,1,2)", "substr(dob,1,4)"),
        block_on("email"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
        retain_intermediate_calculation_columns=True,
    )
    linker = Linker(db_api.register(tables[0]), settings)
    deterministic_rules = [
        block_on("first_name", "dob"),
        "l.first_name = r.first_name and levenshtein(r.surname, l.surname) <= 2",
        block_on("email"),
    ]
    linker.training.estimate_probability_two_random_records_match(deterministic_rules, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "surname"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=True
    )
    return linker


# model -> (build, canonical column -> Splink column, predict threshold or "cluster" for the
# clustering threshold). Predicting only pairs at the clustering threshold gives the same
# clusters as the examples' unfiltered predict without holding millions of rejected pairs.
MODELS: dict[str, tuple] = {
    "febrl3": (febrl3_model, FEBRL_COLUMNS, 0.2),
    "febrl4": (febrl4_model, FEBRL_COLUMNS, 0.2),
    "synthetic": (synthetic_model, COMPETENT_COLUMNS, "cluster"),
    "synthetic_tutorial": (synthetic_tutorial_model, SYNTHETIC_COLUMNS, "cluster"),
    "rldata": (rldata_model, RLDATA_COLUMNS, "cluster"),
    "patentsview": (patentsview_model, PATENTSVIEW_COLUMNS, "cluster"),
}
SYNTHETIC_MODELS = {"competent": "synthetic", "tutorial": "synthetic_tutorial"}


def run(
    dataset_dir: Path,
    out: Path,
    threshold: float | None = None,
    pairs: Path | None = None,
    synthetic_model: str = "competent",
) -> int:
    """Train, predict and cluster; returns the number of clusters written."""
    spec = json.loads((dataset_dir / "splink" / "spec.json").read_text())
    model = SYNTHETIC_MODELS[synthetic_model] if spec["model"] == "synthetic" else spec["model"]
    build, columns, predict_at = MODELS[model]
    threshold = spec["threshold"] if threshold is None else threshold
    predict_threshold = threshold if predict_at == "cluster" else predict_at
    if pairs is not None:
        predict_threshold = min(predict_threshold, PAIRS_FLOOR)
    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    tables = [_load(con, dataset_dir / "splink" / name, columns) for name in spec["inputs"]]
    linker = build(db_api, tables)
    predictions = linker.inference.predict(threshold_match_probability=predict_threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )
    uid = columns["record_id"]
    rel = clusters.as_duckdbpyrelation()
    rel.select(f'"{uid}" as record_id, cluster_id').write_csv(str(out))
    n = int(rel.select("count(distinct cluster_id)").fetchall()[0][0])
    if pairs is not None:
        started = time.perf_counter()
        scored = predictions.as_duckdbpyrelation().filter(f"match_probability >= {PAIRS_FLOOR}")
        scored.select(f'"{uid}_l" as record_id_l, "{uid}_r" as record_id_r, match_probability').write_parquet(
            str(pairs)
        )
        seconds = time.perf_counter() - started
        pairs.with_suffix(".json").write_text(json.dumps({"model": model, "export_seconds": seconds}) + "\n")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threshold", type=float, help="override the model's clustering threshold")
    parser.add_argument("--pairs", type=Path, help=f"also write the scored pairs >= {PAIRS_FLOOR} here")
    parser.add_argument(
        "--synthetic-model",
        choices=sorted(SYNTHETIC_MODELS),
        default="competent",
        help="the generator's model: competent (default) or the earlier tutorial one",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = run(args.dataset_dir, args.out, args.threshold, args.pairs, args.synthetic_model)
    print(f"{n} clusters -> {args.out}")


if __name__ == "__main__":
    main()
