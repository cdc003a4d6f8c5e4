"""Comparison levels on hand-made pairs: every level of every comparison is reachable and correct."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from idr_pipeline.scoring.comparisons import (
    COMPARISONS,
    compare,
    compare_with_tf,
    split_suffix,
    term_frequencies,
)
from idr_pipeline.standardize.nicknames import are_nicknames, canonical_given_name


def levels(column: str, pairs: list[tuple[dict, dict]], cosine: list[float] | None = None) -> list[int]:
    left = pd.DataFrame([a for a, _ in pairs])
    right = pd.DataFrame([b for _, b in pairs])
    gamma = compare(left, right, None if cosine is None else np.array(cosine))
    return gamma[column].tolist()


def test_output_shape_and_dtype() -> None:
    gamma = compare(pd.DataFrame([{"first_name": "Ann"}]), pd.DataFrame([{"first_name": "Ann"}]))
    assert list(gamma.columns) == [c.name for c in COMPARISONS]
    assert all(dtype == np.int8 for dtype in gamma.dtypes)
    # columns the frames lack are missing, not disagreement
    assert gamma["email"].tolist() == [-1]


def test_first_name_levels() -> None:
    def pair(a: str | None, b: str | None, la: str = "Smith", lb: str = "Smith") -> tuple[dict, dict]:
        return {"first_name": a, "last_name": la}, {"first_name": b, "last_name": lb}

    assert levels(
        "first_name",
        [
            pair("Robert", "Robert"),
            pair("Robert", "Bob"),
            pair("Mary Ann", "Mary"),
            pair("Jonathon", "Jonathan"),
            pair("Dwane", "Duane"),
            pair("J", "John"),
            pair("Robert", "Alice"),
            pair(None, "Alice"),
            pair("Smith", "John", "John", "Smith"),
            pair("Smiht", "Jon", "John", "Smith"),
            pair("Flynn", "Weller", "Weller", "Ebony"),
        ],
    ) == [6, 5, 5, 4, 3, 2, 0, -1, 7, 7, 1]


def test_swap_consumes_last_name_evidence() -> None:
    gamma = compare(
        pd.DataFrame([{"first_name": "Smith", "last_name": "John"}]),
        pd.DataFrame([{"first_name": "John", "last_name": "Smith"}]),
    )
    assert gamma.loc[0, "first_name"] == 7
    assert gamma.loc[0, "last_name"] == -1
    crosswise = compare(
        pd.DataFrame([{"first_name": "Flynn", "last_name": "Weller"}]),
        pd.DataFrame([{"first_name": "Weller", "last_name": "Ebony"}]),
    )
    assert crosswise.loc[0, "first_name"] == 1
    assert crosswise.loc[0, "last_name"] == -1


def test_last_name_and_suffix_levels() -> None:
    def pair(a: str | None, b: str | None) -> tuple[dict, dict]:
        return {"first_name": "John", "last_name": a}, {"first_name": "John", "last_name": b}

    pairs = [
        pair("Smith", "Smith"),
        pair("Johnson", "Jonhson"),
        pair("Smith", "Smyth"),
        pair("Smith", "Brown"),
        pair("Smith Jr", "Smith"),
        pair("Smith Jr", "Smith Sr"),
        pair("Smith III", "Smith III"),
        pair(None, "Smith"),
    ]
    assert levels("last_name", pairs) == [3, 2, 1, 0, 3, 3, 3, -1]
    assert levels("name_suffix", pairs) == [-1, -1, -1, -1, 1, 0, 2, -1]
    assert split_suffix("Smith Jr") == ("Smith", "Jr")
    assert split_suffix("Smith iii") == ("Smith", "III")
    assert split_suffix("Junior") == ("Junior", None)


def test_email_levels() -> None:
    def pair(a: str | None, b: str | None) -> tuple[dict, dict]:
        return {"email_key": a}, {"email_key": b}

    assert levels(
        "email",
        [
            pair("johnsmith@gmail.com", "johnsmith@gmail.com"),
            pair("johnsmith@gmail.com", "johnsmith@yahoo.com"),
            pair("johnsmith@gmail.com", "johnsmiht@yahoo.com"),
            pair("bob@gmail.com", "rob@yahoo.com"),
            pair("ann@gmail.com", "zed@gmail.com"),
            pair("ann@gmail.com", "zed@yahoo.com"),
            pair(None, "zed@yahoo.com"),
        ],
    ) == [4, 3, 2, 0, 1, 0, -1]


def test_email_handles_that_only_spell_the_names_add_nothing_to_them() -> None:
    def pair(first: str, last: str, a: str, b: str, first_b: str | None = None) -> tuple[dict, dict]:
        return (
            {"first_name": first, "last_name": last, "email_key": a},
            {"first_name": first_b or first, "last_name": last, "email_key": b},
        )

    assert levels(
        "email",
        [
            # namesakes whose handles are their names: the name comparisons already say it
            pair("Debbie", "Bautista", "debbiebautista@gmail.com", "debbie.bautista@hotmail.com"),
            pair("Debbie", "Bautista", "debbiebautista@gmail.com", "debbiebautista@hotmail.com"),
            pair("Debbie", "Bautista", "debbiebautista@gmail.com", "debbie_bautista@gmail.com"),
            pair("Vanessa", "Kennedy", "vanessa.kennedy87@icloud.com", "vanessa.kennedy32@hotmail.com"),
            pair("Ann", "Lee Jr", "ann.lee@gmail.com", "annlee@yahoo.com"),
            pair("Christopher", "Nelson", "c.nelson@hotmail.com", "c.nelson@sbcglobal.net"),
            pair("Jason", "White", "jasonw@gmail.com", "jason.w@yahoo.com"),
            # what the handles hold beyond the names agrees: one person's mailboxes
            pair("James", "Lewis", "jlewis960@yahoo.com", "jlewis960@gmail.com"),
            pair("James", "Lewis", "jlewis960@yahoo.com", "jlewis96@gmail.com"),
            pair("Vanessa", "Kennedy", "vanessa.kennedy87@icloud.com", "vanessakennedy87@gmail.com"),
            # the same mailbox is the same mailbox, names or not
            pair("Debbie", "Bautista", "debbiebautista@gmail.com", "debbiebautista@gmail.com"),
            # a handle with another given name than its record's holds that name
            pair("Tiffabny", "Wade", "tiffanywade@gmail.com", "tiffanywade@yahoo.com", "Tiffany"),
        ],
    ) == [0, 0, 1, 0, 0, 0, 0, 3, 2, 2, 4, 0]


def test_a_handle_that_spells_the_others_names_stands_in_for_the_missing_ones() -> None:
    named = {"first_name": "Debra", "last_name": "Brown"}

    def nameless(email: str, **names: str) -> tuple[dict, dict]:
        return {"first_name": None, "last_name": None, "email": email, **names}, named

    pairs = [
        nameless("debra_brown@yahoo.com"),  # given name and surname
        nameless("debrabrown84@gmail.com"),
        nameless("Brown.Debra@aol.com"),  # surname first
        nameless("dbrown@aol.com"),  # the initial and the surname
        nameless("dbrown@aol.com", last_name="Brown"),  # only the given name missing
        nameless("debra_brown@yahoo.com", first_name="Debbie"),  # only the surname missing
        nameless("soccer.coffee@gmail.com"),  # spells nothing: still missing, not 'else'
        nameless("debra@gmail.com"),  # a given name alone spells no surname
        nameless("debra.m.brown@gmail.com"),  # more than one separator
        (named, {"first_name": None, "last_name": None, "email": "debra.brown@x.com"}),  # either side
    ]
    assert levels("first_name", pairs) == [6, 6, 6, 2, 2, 5, -1, -1, -1, 6]
    assert levels("last_name", pairs) == [3, 3, 3, 3, 3, 3, -1, -1, -1, 3]
    # the exact levels weigh the frequency of the name the other record spells out
    gamma, tf = compare_with_tf(
        pd.DataFrame([{"first_name": None, "last_name": None, "email": "debra_brown@yahoo.com"}]),
        pd.DataFrame([named]),
    )
    assert (tf.loc[0, "first_name"], tf.loc[0, "last_name"]) == ("Debra", "Brown")


def test_email_falls_back_to_email_when_key_missing() -> None:
    left = pd.DataFrame([{"email": "A@x.com", "email_key": None}])
    right = pd.DataFrame([{"email": "a@x.com", "email_key": "a@x.com"}])
    assert compare(left, right)["email"].tolist() == [4]


def test_phone_levels() -> None:
    def pair(a: str | None, b: str | None) -> tuple[dict, dict]:
        return {"phone": a}, {"phone": b}

    assert levels(
        "phone",
        [
            pair("+14155550123", "+14155550123"),
            pair("+14155550123", "+12125550123"),
            pair("+14155550123", "+14155550999"),
            pair(None, "+14155550999"),
        ],
    ) == [2, 1, 0, -1]


def test_dob_levels() -> None:
    def pair(a: str | None, b: str | None) -> tuple[dict, dict]:
        return {"dob": a}, {"dob": b}

    assert levels(
        "dob",
        [
            pair("1980-05-12", "1980-05-12"),
            pair("1980-05-12", "1980-12-05"),
            pair("1980-05-12", "1979-05-12"),
            pair("1980-05-12", "1980-05-17"),
            pair("1980-05-12", "1980-05-27"),
            pair("1980-05-12", "1975-01-30"),
            pair("1980-05-12", None),
        ],
    ) == [5, 4, 3, 2, 1, 0, -1]


def test_address_levels() -> None:
    def pair(a: tuple, b: tuple) -> tuple[dict, dict]:
        keys = ("street", "postcode", "city")
        return dict(zip(keys, a, strict=True)), dict(zip(keys, b, strict=True))

    home = ("12 North Main Street", "94110", "San Francisco")
    assert levels(
        "address",
        [
            pair(home, home),
            pair(home, ("12 North Main Stret", "94110", "San Francisco")),
            pair(home, ("14 North Main Street", "94110", "San Francisco")),
            pair(home, ("12 North Main Street", "94111", "San Francisco")),
            pair(home, ("9 Oak Avenue", "94110", "San Francisco")),
            pair(home, ("9 Oak Avenue", "94117", "San Francisco")),
            pair(home, ("9 Oak Avenue", "10001", "New York")),
            pair(home, (None, None, None)),
        ],
    ) == [5, 4, 2, 3, 2, 1, 0, -1]


def test_identifier_levels() -> None:
    ids = [("123456789", "123456789"), ("123456789", "123456798"), ("123456789", "987654321"), (None, "1")]
    assert levels("national_id", [({"national_id": a}, {"national_id": b}) for a, b in ids]) == [2, 1, 0, -1]
    devices = [("d1", "d1"), ("d1", "d2"), ("d1", None)]
    assert levels("device_id", [({"device_id": a}, {"device_id": b}) for a, b in devices]) == [1, 0, -1]
    ips = [("10.0.0.1", "10.0.0.1"), ("10.0.0.1", "10.0.0.2")]
    assert levels("ip_address", [({"ip_address": a}, {"ip_address": b}) for a, b in ips]) == [1, 0]


def test_embedding_levels() -> None:
    pairs = [({}, {})] * 5
    assert levels("embedding", pairs, [0.97, 0.9, 0.81, 0.5, float("nan")]) == [3, 2, 1, 0, -1]
    assert levels("embedding", pairs) == [-1] * 5
    with pytest.raises(ValueError):
        levels("embedding", pairs, [0.9])


def test_index_of_inputs_is_ignored() -> None:
    left = pd.DataFrame([{"first_name": "Ann"}, {"first_name": "Bob"}], index=[7, 3])
    right = pd.DataFrame([{"first_name": "Ann"}, {"first_name": "Rob"}], index=[0, 1])
    assert compare(left, right)["first_name"].tolist() == [6, 5]


def test_tf_values_report_agreed_value_on_tf_levels_only() -> None:
    left = pd.DataFrame(
        [
            {"first_name": "Ann", "last_name": "Smith Jr", "postcode": "94110", "street": "1 A St"},
            {"first_name": "Ann", "last_name": "Smith", "postcode": "94110", "street": "1 A St"},
        ]
    )
    right = pd.DataFrame(
        [
            {"first_name": "Anne", "last_name": "Smith", "postcode": "94110", "street": "9 B St"},
            {"first_name": "Bob", "last_name": "Smyth", "postcode": "94110", "street": "1 A St"},
        ]
    )
    gamma, tf = compare_with_tf(left, right)
    assert tf.loc[0, "last_name"] == "Smith"  # suffix stripped, as in term_frequencies
    assert tf.loc[0, "address"] == "94110"  # postcode-only level adjusts on postcode
    assert tf.loc[1, "address"] is None  # exact street + postcode is not TF-adjusted
    assert tf.loc[1, "last_name"] is None
    assert set(tf.columns) == {"first_name", "last_name", "dob", "address"}


def test_term_frequencies() -> None:
    profiles = pd.DataFrame({"last_name": ["Smith", "Smith Jr", "Brown", None], "city": ["A", "A", "A", "B"]})
    tables = term_frequencies(profiles)
    assert tables["last_name"]["Smith"] == pytest.approx(2 / 3)
    assert tables["city"]["A"] == pytest.approx(0.75)


def test_nicknames() -> None:
    assert canonical_given_name("Bobby") == "robert"
    assert canonical_given_name("Liam") == "william"
    assert canonical_given_name("Zebulon") == "zebulon"
    assert are_nicknames("Kate", "Catherine")
    assert are_nicknames("Peggy", "Margaret")
    assert are_nicknames("Chris", "Christine") and are_nicknames("Chris", "Christopher")
    assert not are_nicknames("Christine", "Christopher")
    assert not are_nicknames("Robert", "William")
