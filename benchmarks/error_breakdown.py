"""Where a system's pairwise errors are: what the two records of each wrong pair share exactly.

    .venv-bench/bin/python benchmarks/error_breakdown.py data/benchmarks/gen100k \
        data/benchmarks/gen100k/results/ours.csv

Reads a prepared dataset (``benchmarks/datasets.py``) and one system's output
(``record_id`` with ``identity_id`` or ``cluster_id``), and prints two markdown tables:

* false-positive pairs (one predicted identity, two true people) by what their records share
  exactly, first match wins: first name and surname (namesakes, a Jr and a Sr), address and
  surname (household members), surname only, address only, first name only, an identifier only
  (e-mail, phone, IP, device id, national id), nothing exact; and how many share each
  identifier and the date of birth;
* false-negative pairs (one true person, two predicted identities) by whether they share the
  e-mail and the phone.

"Exactly" is after the cleaning the Splink side gets (``splink/*.csv``: lower-case, no accents
or punctuation, mailbox e-mails, ten-digit phones, USPS street words), with generational
suffixes dropped from surnames so that a Jr and a Sr share theirs. The address is the street
(a record without one shares no address). A truth record missing from the output is its own
identity, as in scoring.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import plain_names  # noqa: E402

# Splink-side column -> role here; FEBRL files use their own names.
ALIASES = {
    "surname": "last_name",
    "given_name": "first_name",
    "rec_id": "record_id",
    "unique_id": "record_id",
}
IDENTIFIERS = ["email", "phone", "ip_address", "device_id", "national_id"]
SUFFIX = r"\s+(?:jr|sr|ii|iii|iv)$"
FP_CATEGORIES = [
    "first name and surname",
    "address and surname",
    "surname only",
    "address only",
    "first name only",
    "an identifier only",
    "nothing exact",
]


def load_records(dataset_dir: Path) -> pd.DataFrame:
    """The dataset's records as the Splink side reads them, one row per record id."""
    spec = json.loads((dataset_dir / "splink" / "spec.json").read_text())
    frames = [pd.read_csv(dataset_dir / "splink" / name, dtype=str) for name in spec["inputs"]]
    df = pd.concat(frames, ignore_index=True).rename(columns=ALIASES)
    if "street" not in df and {"street_number", "address_1"} <= set(df.columns):  # FEBRL
        df["street"] = (df.street_number.fillna("") + " " + df.address_1.fillna("")).str.strip()
    out = pd.DataFrame({"record_id": df.record_id})
    out["first_name"] = plain_names(df.first_name)
    out["last_name"] = plain_names(df.last_name).str.replace(SUFFIX, "", regex=True)
    for column in ["street", "dob", *IDENTIFIERS]:
        out[column] = (
            df[column].str.strip().str.lower().replace("", pd.NA)
            if column in df
            else pd.Series(pd.NA, index=df.index, dtype="string")
        )
    return out.drop_duplicates("record_id").set_index("record_id")


def labeled(output: Path, truth: pd.DataFrame) -> pd.DataFrame:
    """Truth records with their predicted identity; unpredicted ones are singletons."""
    predicted = pd.read_csv(output, dtype=str).rename(columns={"cluster_id": "identity_id"})
    df = truth.merge(predicted[["record_id", "identity_id"]].drop_duplicates("record_id"), how="left")
    return df.assign(identity_id=df.identity_id.fillna("__single__" + df.record_id))


def pairs_within(df: pd.DataFrame, group: str, other: str) -> pd.DataFrame:
    """Record pairs in one `group` whose `other` differs (record_id_x < record_id_y)."""
    pairs = df.merge(df, on=group)
    return pairs[(pairs.record_id_x < pairs.record_id_y) & (pairs[f"{other}_x"] != pairs[f"{other}_y"])]


def shared(records: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair, whether the two records hold the same non-empty value of each field."""
    a = records.reindex(pairs.record_id_x.to_numpy())
    b = records.reindex(pairs.record_id_y.to_numpy())
    same = (a.to_numpy() == b.to_numpy()) & a.notna().to_numpy() & b.notna().to_numpy()
    return pd.DataFrame(same, columns=records.columns)


def fp_category(s: pd.DataFrame) -> pd.Series:
    first, last, address = s.first_name, s.last_name, s.street
    identifier = s[IDENTIFIERS].any(axis=1)
    conditions = [
        first & last,
        address & last,
        last & ~address,
        address & ~last,
        first & ~last & ~address,
        identifier,
    ]
    category = pd.Series("nothing exact", index=s.index)
    for name, condition in zip(reversed(FP_CATEGORIES[:-1]), reversed(conditions), strict=True):
        category[condition.to_numpy()] = name
    return category


def breakdown(dataset_dir: Path, output: Path) -> list[str]:
    truth = pd.read_csv(dataset_dir / "truth.csv", dtype=str)
    records = load_records(dataset_dir)
    df = labeled(output, truth)
    fp = shared(records, pairs_within(df, "identity_id", "person_id"))
    fn = shared(records, pairs_within(df, "person_id", "identity_id"))
    lines = [f"### {dataset_dir.name}: {output.name}", ""]
    lines += [f"{len(fp):,} false-positive pairs, {len(fn):,} false-negative pairs.", ""]
    lines += ["| share of false-positive pairs | pairs | the two records share |", "|---:|---:|---|"]
    counts = fp_category(fp).value_counts()
    for name in FP_CATEGORIES:
        n = int(counts.get(name, 0))
        lines.append(f"| {_share(n, len(fp))} | {n:,} | {name} |")
    lines += ["", "| of false-positive pairs, share sharing | " + " | ".join(["dob", *IDENTIFIERS]) + " |"]
    lines.append("|---|" + "---:|" * (1 + len(IDENTIFIERS)))
    lines.append("| | " + " | ".join(_share(int(fp[c].sum()), len(fp)) for c in ["dob", *IDENTIFIERS]) + " |")
    both = fn.email & fn.phone
    lines += ["", "| false-negative pairs sharing | pairs | share |", "|---|---:|---:|"]
    for name, mask in (
        ("e-mail and phone", both),
        ("e-mail, not phone", fn.email & ~fn.phone),
        ("phone, not e-mail", fn.phone & ~fn.email),
        ("neither", ~fn.email & ~fn.phone),
    ):
        lines.append(f"| {name} | {int(mask.sum()):,} | {_share(int(mask.sum()), len(fn))} |")
    return lines


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir", type=Path, help="a prepared dataset folder (data/benchmarks/NAME)")
    parser.add_argument("output", type=Path, help="a system's record_id,identity_id (or cluster_id) CSV")
    args = parser.parse_args()
    print("\n".join(breakdown(args.dataset_dir, args.output)))


if __name__ == "__main__":
    main()
