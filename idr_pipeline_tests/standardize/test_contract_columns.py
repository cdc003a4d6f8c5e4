"""The contract's checks share each column's factorization within one validation, and only there.

Sharing is keyed on the Series pandera hands the checks, so the verdicts must be those of
checks that each factorize for themselves (the schema validated outside ``validate_clean``),
a frame changed in place between two validations must be judged afresh, and nothing may be
left cached once a validation ends, whether it passed or failed.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from idr_pipeline.standardize import CLEAN_PROFILE_SCHEMA, contract, validate_clean
from idr_pipeline_tests.standardize.test_contract import VALID

# Values that fail only the second or third check of a column with several.
_SECOND_CHECK_FAILURES = {
    "email": "John@example.com",
    "email_key": "JOHN@gmail.com",
    "dob": "1985-02-30",
    "device_id": "ABCDEF01-2345-4789-8ABC-DEF012345678",
    "source_customer_id": "x" * 200,
    "anonymous_id": "ABCDEF01-2345-4789-8ABC-DEF012345678",
}


def _failures(run: object) -> pd.DataFrame:
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        run()
    cases = caught.value.failure_cases
    return cases.sort_values(["column", "check", "index"]).reset_index(drop=True)


def _frame() -> pd.DataFrame:
    rows = [VALID, *({**VALID, column: bad} for column, bad in _SECOND_CHECK_FAILURES.items()), VALID]
    return pd.DataFrame(rows, dtype=object)


def test_shared_columns_give_the_verdicts_of_separate_checks() -> None:
    shared = _failures(lambda: validate_clean(_frame()))
    separate = _failures(lambda: CLEAN_PROFILE_SCHEMA.validate(_frame(), lazy=True))
    pd.testing.assert_frame_equal(shared, separate)
    assert set(shared["column"]) == set(_SECOND_CHECK_FAILURES)


def test_each_column_is_factorized_once_and_nothing_stays_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real = contract._Distinct.__init__

    def counting(self: contract._Distinct, series: pd.Series) -> None:
        made.append(series.name)
        real(self, series)

    monkeypatch.setattr(contract._Distinct, "__init__", counting)
    validate_clean(pd.DataFrame([VALID, VALID], dtype=object))
    assert sorted(made) == sorted(set(made))  # no column twice
    assert {"email", "dob", "device_id", "source_customer_id"} <= set(made)
    assert contract._COLUMNS.get() is None
    _failures(lambda: validate_clean(_frame()))
    assert contract._COLUMNS.get() is None


def test_a_frame_changed_in_place_is_judged_again() -> None:
    df = pd.DataFrame([VALID, VALID], dtype=object)
    validate_clean(df)
    df.loc[1, "email"] = "John@example.com"
    assert set(_failures(lambda: validate_clean(df))["column"]) == {"email"}
    df.loc[1, "email"] = VALID["email"]
    validate_clean(df)
