"""Small renderers for run reports: markdown previews and PNG charts embedded in markdown.

Dagster's UI renders markdown metadata, including data-URI images, so a chart travels with
the materialization event instead of living in a separate dashboard.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import pandas as pd


def markdown_table(df: pd.DataFrame, max_rows: int = 10) -> str:
    if df.empty:
        return "_(no rows)_"
    return df.head(max_rows).to_markdown(index=False)


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def bar_chart_png(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, ylabel: str
) -> bytes:
    import matplotlib  # imported on use: heavy, and only asset metadata draws charts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): no display backend is ever loaded

    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    ax.bar([str(x) for x in labels], values, color="#4f46e5")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if values and max(values) / max(min(v for v in values if v > 0) if any(values) else 1, 1) > 100:
        ax.set_yscale("log")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def size_histogram(sizes: pd.Series) -> pd.DataFrame:
    """Cluster sizes bucketed 1, 2, 3, 4, 5, 6-10, 11-20, 21-50, >50."""
    edges = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 10), (11, 20), (21, 50), (51, 10**12)]
    rows = []
    for lo, hi in edges:
        label = str(lo) if lo == hi else (f">{lo - 1}" if hi >= 10**12 else f"{lo}-{hi}")
        rows.append({"size": label, "identities": int(((sizes >= lo) & (sizes <= hi)).sum())})
    return pd.DataFrame(rows)
