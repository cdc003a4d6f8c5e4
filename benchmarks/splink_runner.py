"""Splink 5 (DuckDB backend) over one prepared dataset, in its own process.

    .venv-bench/bin/python benchmarks/splink_runner.py DATASET_DIR OUT.csv [--threshold P]

Writes ``record_id,cluster_id``. Its own process so that the harness can measure its wall time
and peak memory exactly as it does ``idr resolve``'s, from start-up to the file on disk.

The models are the ones in Splink's own examples (``docs/demos/examples/duckdb/`` and
``docs/demos/tutorials/`` in moj-analytical-services/splink), copied rather than tuned: the
point is what a user following Splink's documentation gets, not what a Splink expert could
squeeze out of each dataset. Chart and evaluation cells are left out; only the calls that change
the model or the clusters are kept, in the notebooks' order and with their arguments.

* ``febrl3`` (FEBRL1-3, dedupe): ``febrl3.ipynb``: blocking, comparisons, deterministic rules
  at recall 0.9, u from 1e6 pairs (seed 2), EM on date_of_birth then postcode, predict at 0.2.
  That notebook stops at pairwise scores, so clusters use the febrl4 example's 0.99.
* ``febrl4`` (link A to B): ``febrl4.ipynb``'s "detailed" model, deterministic rules at recall
  0.8, u from 1e6 pairs, EM on date_of_birth and postcode without TF, predict at 0.2, cluster
  at 0.99.
* ``synthetic`` (generator data): the comparisons of the fake_1000 tutorial
  (``04_Estimating_model_parameters``: NameComparison on first and last name, ExactMatch city
  with TF, EmailComparison) with the dob and blocking of ``deduplicate_50k_synthetic.ipynb``
  (DateOfBirthComparison; its ten blocking rules with postcode_fake -> postcode and
  birth_place -> city) plus postcode, which that example compares with PostcodeComparison, a
  UK-format comparison, so here ExactMatch with TF as the FEBRL examples do for Australian
  postcodes; the tutorial's deterministic rules at recall 0.7; u from 1e7 pairs and EM on
  first+last name then dob without TF as in the 50k example; cluster at its 0.95. Email is
  also a blocking rule, since the tutorial uses it as a deterministic rule and the generator
  has nameless web sign-ups that only email can reach.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

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


def synthetic_model(db_api: DuckDBAPI, tables: list[duckdb.DuckDBPyRelation]) -> Linker:
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


MODELS: dict[str, tuple] = {
    "febrl3": (febrl3_model, FEBRL_COLUMNS, 0.2),
    "febrl4": (febrl4_model, FEBRL_COLUMNS, 0.2),
    "synthetic": (synthetic_model, SYNTHETIC_COLUMNS, "cluster"),
}


def run(dataset_dir: Path, out: Path, threshold: float | None = None) -> int:
    """Train, predict and cluster; returns the number of clusters written."""
    spec = json.loads((dataset_dir / "splink" / "spec.json").read_text())
    build, columns, predict_at = MODELS[spec["model"]]
    threshold = spec["threshold"] if threshold is None else threshold
    # The 50k example predicts every blocked pair; scoring only pairs at the clustering
    # threshold gives the same clusters without holding millions of rejected pairs.
    predict_threshold = threshold if predict_at == "cluster" else predict_at
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
    return int(rel.select("count(distinct cluster_id)").fetchall()[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threshold", type=float, help="override the example's clustering threshold")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = run(args.dataset_dir, args.out, args.threshold)
    print(f"{n} clusters -> {args.out}")


if __name__ == "__main__":
    main()
