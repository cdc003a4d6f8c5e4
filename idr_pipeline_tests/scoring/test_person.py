"""Person-level conflicts, and which of them a model's score may overrule (scoring/person.py)."""

from __future__ import annotations

import pytest

from idr_pipeline.scoring.person import (
    CONFLICTING_DOB,
    CONFLICTING_FIRST_NAME,
    CONFLICTING_NATIONAL_ID,
    PersonSignatures,
    could_be_one_corrupted_person,
    given_name_in_email,
    person_conflict,
    person_key,
)


@pytest.mark.parametrize(
    ("left", "right", "reason", "excused"),
    [
        # FEBRL-style copies: data entry replaced the given name, or re-keyed the id as well
        (("Daniella", "Boothroyd", "1960-09-04", None), ("Lachlan", "Boothroyd", "1960-09-04", None),
         CONFLICTING_FIRST_NAME, True),
        (("Daniella", "Boothroyd", "1960-09-04", "7721398"), ("Lachlan", "Boothroyd", "1960-09-04", "5764782"),
         CONFLICTING_NATIONAL_ID, True),
        (("Zoe", "Szepessy", "1933-01-22", "9920487"), ("Zoe", "Szepessy", "1933-01-22", "1322282"),
         CONFLICTING_NATIONAL_ID, True),
        # relatives at one address: the dates of birth differ, or one record has none
        (("Michael", "Montes", None, None), ("Paige", "Montes", "1992-03-18", None), CONFLICTING_FIRST_NAME, False),
        (("Michael", "Montes", "1961-05-02", None), ("Paige", "Montes", "1992-03-18", None), CONFLICTING_DOB, False),
        (("John", "Smith", "1950-04-01", "111223333"), ("Jane", "Smith", "1953-07-09", "999887777"),
         CONFLICTING_NATIONAL_ID, False),
        # one birthday, another family name: not one person's record
        (("Anne", "Fernandez", "1965-05-23", None), ("Carla", "Hyland", "1965-05-23", None),
         CONFLICTING_FIRST_NAME, False),
    ],
)  # fmt: skip
def test_only_conflicts_data_entry_explains_are_excused(left, right, reason, excused) -> None:
    x, y = person_key(*left), person_key(*right)
    assert person_conflict(x, y) == reason
    assert could_be_one_corrupted_person(x, y, reason) is excused
    assert could_be_one_corrupted_person(y, x, reason) is excused


@pytest.mark.parametrize(
    ("first", "other", "one_name"),
    [
        ("Aynthony", "Tony", True),  # a typo of a full name against its nickname
        ("Anthnoy", "Anthony", True),
        ("Micheal", "Mike", True),
        ("Elizabteh", "Beth", True),
        ("Anthnoy", "Beth", False),
        ("Jessi", "Jess", True),
        ("Bettx", "Tony", False),  # one edit from 'betty', which is not Tony
        ("Ann", "Dan", False),  # too short to be read as another table name mistyped
    ],
)
def test_a_mistyped_given_name_is_still_read_through_the_nickname_table(first, other, one_name) -> None:
    x, y = person_key(first, "Lopez", None, None), person_key(other, "Lopez", None, None)
    assert (person_conflict(x, y) is None) is one_name
    assert (person_conflict(y, x) is None) is one_name


@pytest.mark.parametrize(
    ("email", "last_name", "given"),
    [
        ("james.vasquez@aol.com", "Vasquez", "james"),
        ("James_Vasquez84@aol.com", "vasquez", "james"),
        ("jamesvasquez@aol.com", "Vasquez", "james"),
        ("j.vasquez@aol.com", "Vasquez", "j"),
        ("jvasquez+shop@aol.com", "Vasquez Jr", "j"),
        ("claudia-oconnor@x.net", "O'Connor", "claudia"),
        # not a given name before the surname: nothing
        ("vasquez@aol.com", "Vasquez", None),
        ("vasquez.james@aol.com", "Vasquez", None),
        ("thevasquezes@aol.com", "Vasquez", None),
        ("the.vasquez@aol.com", "Vasquez", None),
        ("mrvasquez@aol.com", "Vasquez", None),
        ("jd.vasquez@aol.com", "Vasquez", None),
        ("a.j.vasquez@aol.com", "Vasquez", None),
        ("musiccool548@gmail.com", "Vasquez", None),
        ("james.vasquez@aol.com", None, None),
        (None, "Vasquez", None),
    ],
)
def test_an_e_mail_handle_names_a_record_without_a_given_name(email, last_name, given) -> None:
    assert given_name_in_email(email, last_name) == given
    assert person_key(None, last_name, None, None, email).first == given
    # a given name of its own always wins over the handle
    assert person_key("Claudia", last_name, None, None, email).first == "claudia"


def test_nameless_carriers_whose_handles_name_two_people_are_two_people() -> None:
    signatures = PersonSignatures.of(
        [None, None, None, "James"],
        ["Vasquez", "Vasquez", "Vasquez", "Vasquez"],
        [None] * 4,
        [None] * 4,
        ["james.vasquez@aol.com", "claudia.vasquez@aol.com", "vasquez@aol.com", "claudia.vasquez@aol.com"],
    )
    firsts = [signatures.keys[c].first if c >= 0 else None for c in signatures.codes]
    # the nameless 'vasquez@' carries nothing personal; James keeps his name over the handle
    assert firsts == ["james", "claudia", None, "james"]
    assert person_conflict(signatures.keys[signatures.codes[0]], signatures.keys[signatures.codes[1]])
