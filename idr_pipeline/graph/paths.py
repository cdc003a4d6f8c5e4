"""The chain of links joining two records: one breadth-first search for the matcher and the store."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


def path_between(links: Iterable[tuple[str, str]], a: str, b: str) -> list[tuple[str, str]] | None:
    """Shortest chain of undirected links from a to b as (from, to) steps; None if not joined."""
    adjacency: dict[str, list[str]] = defaultdict(list)
    for left, right in links:
        adjacency[left].append(right)
        adjacency[right].append(left)
    previous: dict[str, str | None] = {a: None}
    frontier = [a]
    while frontier and b not in previous:
        following = []
        for node in frontier:
            for other in adjacency[node]:
                if other not in previous:
                    previous[other] = node
                    following.append(other)
        frontier = following
    if b not in previous:
        return None
    path, node = [], b
    while (parent := previous[node]) is not None:
        path.append((parent, node))
        node = parent
    return list(reversed(path))
