"""Run a pure matching step in a forked child process while the caller does other work.

The Spark steps of a batch run keep both cores of a laptop busy; the pandas steps after them
(candidates, scoring) would run on one, with the other idle. Most of that code holds the GIL,
so threads do not help; a forked child does. Fork, not spawn, because the child then
inherits the caller's frames without pickling the profiles: only the result travels
back, pickled through a pipe, so a step meant for a child returns compact arrays, not frames
of Python strings.

Where fork does not exist (Windows) or one worker is asked for, the step runs inline, so
callers need no second code path and results never depend on the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")


class ForkedStepError(RuntimeError):
    """The child died, or raised something that would not pickle; the message says which."""


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


class Forked(Generic[T]):
    """``fn()`` computed in a forked child (or inline); ``result()`` waits for and returns it.

    The child must not touch the Spark session or any other connection the parent holds: it
    shares their sockets. Call ``result()`` or ``cancel()`` exactly once, in a ``finally`` if
    the caller can raise in between, so no child outlives the step.
    """

    def __init__(self, fn: Callable[[], T], fork: bool = True) -> None:
        self._inline: tuple[bool, object] | None = None  # (True, value) or (False, exception)
        self._process: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        if not (fork and can_fork()):
            try:
                self._inline = True, fn()
            except Exception as exc:  # raised again, unchanged, by result()
                self._inline = False, exc
            return
        ctx = mp.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child, args=(fn, send), daemon=True)
        self._process.start()
        send.close()
        self._conn = receive

    def result(self) -> T:
        if self._inline is not None:
            ok, value = self._inline
            if not ok:
                raise value  # type: ignore[misc]
            return value  # type: ignore[return-value]
        assert self._conn is not None and self._process is not None
        try:
            outcome = self._conn.recv()
        except EOFError:
            self._process.join()
            raise ForkedStepError(
                f"the forked step died without a result (exit code {self._process.exitcode}; "
                "a negative code is the signal, -9 usually the out-of-memory killer)"
            ) from None
        finally:
            self._conn.close()
        self._process.join()
        ok, value = outcome
        if not ok:
            exc, trace = value
            if exc is None:
                raise ForkedStepError(f"the forked step raised:\n{trace}")
            # The child's own exception, so callers catch what they would catch inline.
            exc.add_note(f"raised in a forked child:\n{trace}")
            raise exc
        return value  # type: ignore[return-value]

    def cancel(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()


def map_forked(
    fn: Callable[[Item], T],
    items: Sequence[Item],
    workers: int,
    cost: Callable[[Item], float] | None = None,
) -> list[T]:
    """``[fn(item) for item in items]``, spread over ``workers`` processes (this one included),
    returned in the order of ``items``.

    With ``cost``, the dearest item goes first to the least loaded worker (longest processing
    time first), so one large file is not paired with another while a small one sits alone,
    as dealing round-robin would. Without it, every item costs the same.
    """
    workers = min(workers, len(items))
    if workers <= 1 or not can_fork():
        return [fn(item) for item in items]
    share = deal(items, workers, cost or (lambda _item: 1.0))
    children = [Forked(lambda mine=mine: [fn(items[j]) for j in mine]) for mine in share[1:]]
    try:
        results = [[fn(items[j]) for j in share[0]], *(child.result() for child in children)]
    finally:
        for child in children:
            child.cancel()
    out: dict[int, T] = {
        j: r for mine, done in zip(share, results, strict=True) for j, r in zip(mine, done, strict=True)
    }
    return [out[j] for j in range(len(items))]


def deal(items: Sequence[Item], workers: int, cost: Callable[[Item], float]) -> list[list[int]]:
    """The positions of ``items`` each worker takes: dearest first, each to the worker with the
    least cost so far (ties to the lowest worker, so equal costs deal round-robin)."""
    costs = [float(cost(item)) for item in items]
    if any(c < 0 or c != c for c in costs):
        raise ValueError(f"item costs must be non-negative numbers, got {costs}")
    order = sorted(range(len(items)), key=lambda j: (-costs[j], j))
    load = [0.0] * workers
    share: list[list[int]] = [[] for _ in range(workers)]
    for j in order:
        k = min(range(workers), key=lambda w: (load[w], w))
        share[k].append(j)
        load[k] += costs[j]
    return [sorted(mine) for mine in share]


def _child(fn: Callable[[], object], conn: Connection) -> None:
    try:
        outcome: tuple[bool, object] = True, fn()
    except Exception as exc:
        outcome = False, (exc if _pickles(exc) else None, traceback.format_exc())
    try:
        conn.send(outcome)
    except Exception:  # the result would not pickle: say so rather than die silently
        conn.send((False, (None, traceback.format_exc())))
    finally:
        conn.close()


def _pickles(value: object) -> bool:
    try:
        pickle.loads(pickle.dumps(value))
    except Exception:
        return False
    return True
