"""Charts: pure functions from a tidy DataFrame and column names to a plotly ``go.Figure``."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#65a30d", "#4b5563", "#9333ea", "#ea580c", "#0d9488")
HIGHLIGHT = "#e11d48"

# One colour per model and page kind, the same on every chart: the fine-tuned model (and the
# segment page it builds) in the highlight colour, which no other series uses.
SERIES_COLOURS = {
    "fine-tuned transformer": HIGHLIGHT,
    "two stages (fine-tuned + LambdaRank)": "#9f1239",  # the same family, darker: stage 2 on top of stage 1
    "re-buy": "#059669",
    "zero-shot encoder": "#d97706",
    "EASE": "#2563eb",
    "item kNN": "#0d9488",
    "transition": "#7c3aed",
    "popularity": "#64748b",
    "recent popularity": "#a3a3a3",
    "segment page": HIGHLIGHT,
    "personalised top-k": "#2563eb",
    "global popular page": "#64748b",
}
_SPARE = tuple(c for c in PALETTE if c not in SERIES_COLOURS.values() and c != "#dc2626")  # no second red


def series_colour(name: str, n: int = 0) -> str:
    """The stable colour of a model or page kind; other names take spare palette colours by position ``n``."""
    return SERIES_COLOURS.get(str(name)) or _SPARE[n % len(_SPARE)]


def _style(fig: go.Figure, height: int = 360, title: str | None = None) -> go.Figure:
    """House style. The legend sits under the plot, so it never covers the title, whatever its number of rows."""
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=48 if title else 10, b=10),
        title=dict(text=title, x=0, xanchor="left", y=1, yref="container", yanchor="top", pad=dict(t=12, l=4)) if title else None,
        plot_bgcolor="white", paper_bgcolor="white",
        legend=dict(orientation="h", x=0, xanchor="left", y=0, yref="container", yanchor="bottom", font=dict(size=12)),
        font=dict(family="Source Sans Pro, Helvetica Neue, Arial, sans-serif", size=13),
    )
    fig.update_xaxes(showgrid=False, linecolor="#d1d5db", automargin=True)
    fig.update_yaxes(gridcolor="#eef0f3", zeroline=False, automargin=True)
    return fig


def metric_bars(frame: pd.DataFrame, x: str, y: str, color: str, low: str | None = None, high: str | None = None,
                highlight: str | None = None, title: str | None = None, height: int = 360) -> go.Figure:
    """Grouped bars of y per x, one colour per value of ``color``, with optional CI whiskers.

    Args:
        frame: one row per (x, color) with the value and optional interval bounds.
        highlight: a value of ``color`` drawn in the highlight colour when it has no colour of its own
            in :data:`SERIES_COLOURS` (the fine-tuned model has).
    """
    fig = go.Figure()
    groups = list(dict.fromkeys(frame[color]))
    for n, name in enumerate(groups):
        part = frame[frame[color] == name]
        error = None
        if low and high and part[low].notna().any():
            error = dict(type="data", symmetric=False, array=(part[high] - part[y]).clip(lower=0),
                         arrayminus=(part[y] - part[low]).clip(lower=0), thickness=1.2, width=3)
        fig.add_bar(x=part[x], y=part[y], name=str(name), error_y=error,
                    marker_color=HIGHLIGHT if name == highlight and name not in SERIES_COLOURS else series_colour(name, n),
                    hovertemplate=f"{name}<br>%{{x}}: %{{y:.4f}}<extra></extra>")
    fig.update_layout(barmode="group", bargap=0.25)
    return _style(fig, height, title)


def training_curve(frame: pd.DataFrame, x: str, loss: str, score: str, title: str | None = None) -> go.Figure:
    """Training loss (left axis) and validation score (right axis) per epoch."""
    fig = go.Figure()
    fig.add_scatter(x=frame[x], y=frame[loss], name=loss, mode="lines+markers", line=dict(color=PALETTE[0]))
    fig.add_scatter(x=frame[x], y=frame[score], name=score, mode="lines+markers", line=dict(color=HIGHLIGHT), yaxis="y2")
    epochs = int(frame[x].max()) if len(frame) else 1
    fig.update_layout(yaxis=dict(title=loss), yaxis2=dict(title=score, overlaying="y", side="right", showgrid=False),
                      xaxis=dict(title=x, dtick=max(1, round(epochs / 10))))  # whole epochs only
    return _style(fig, 320, title)


def frontier(frame: pd.DataFrame, x: str, y: str, label: str, marks: pd.DataFrame | None = None, mark_label: str = "name",
             title: str | None = None) -> go.Figure:
    """The accuracy–diversity frontier: every sweep point, with the chosen settings (A, B) marked.

    Args:
        frame: one row per sweep point with the two metrics and a text label (its settings).
        marks: rows (with columns x, y and ``mark_label``) drawn as big labelled markers.
    """
    fig = go.Figure()
    fig.add_scatter(x=frame[x], y=frame[y], mode="markers", name="settings grid", text=frame[label],
                    marker=dict(size=9, color="#94a3b8", line=dict(width=0)),
                    hovertemplate="%{text}<br>" + f"{x}: %{{x:.4f}}<br>{y}: %{{y:.4f}}<extra></extra>")
    if marks is not None and len(marks):
        colors = {"A": PALETTE[0], "B": HIGHLIGHT}
        for _, row in marks.iterrows():
            name = str(row[mark_label])
            fig.add_scatter(x=[row[x]], y=[row[y]], mode="markers+text", name=name, text=[name], textposition="top center",
                            marker=dict(size=16, color=colors.get(name, PALETTE[2]), symbol="diamond", line=dict(width=1, color="white")),
                            hovertemplate=f"{name}<br>{x}: %{{x:.4f}}<br>{y}: %{{y:.4f}}<extra></extra>")
    fig.update_xaxes(title=x)
    fig.update_yaxes(title=y)
    return _style(fig, 420, title)


def segment_map(frame: pd.DataFrame, x: str, y: str, color: str, hover: str | None = None, highlight: str | None = None,
                title: str | None = None) -> go.Figure:
    """A 2-D map of users (or of a sample of them), coloured by segment."""
    fig = go.Figure()
    for n, name in enumerate(sorted(frame[color].astype(str).unique())):
        part = frame[frame[color].astype(str) == name]
        chosen = highlight is not None and name == str(highlight)
        fig.add_scattergl(x=part[x], y=part[y], mode="markers", name=name, text=part[hover] if hover else None,
                          marker=dict(size=7 if chosen else 5, opacity=0.95 if chosen or highlight is None else 0.35,
                                      color=PALETTE[n % len(PALETTE)], line=dict(width=0)),
                          hovertemplate="%{text}<extra></extra>" if hover else None)
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None, gridcolor="white")
    fig = _style(fig, 520, title)
    fig.update_layout(legend=dict(font=dict(size=11), itemsizing="constant"))
    return fig


def size_bars(frame: pd.DataFrame, label: str, value: str, highlight: str | None = None, title: str | None = None) -> go.Figure:
    """Horizontal bars of a value per label (segment sizes), largest on top."""
    part = frame.sort_values(value, ascending=True)
    colors = [HIGHLIGHT if highlight is not None and str(n) == str(highlight) else PALETTE[0] for n in part[label]]
    fig = go.Figure(go.Bar(x=part[value], y=part[label].astype(str), orientation="h", marker_color=colors,
                           hovertemplate="%{y}: %{x:,}<extra></extra>"))
    fig.update_yaxes(automargin=True)
    return _style(fig, max(220, 28 * len(part) + 60), title)


def metric_facets(frame: pd.DataFrame, metric: str, value: str, series: str, columns: int = 3, title: str | None = None,
                  height: int | None = None) -> go.Figure:
    """Bars of each series, one small chart per metric, each with its own y axis.

    Metrics of different scales (NDCG near 0.05, diversity near 0.8) stay readable side by side;
    the series keep their :data:`SERIES_COLOURS` and one shared legend.

    Args:
        frame: one row per (metric, series) with the value.
        metric: column naming the metric (a facet each, in order of appearance).
        series: column naming the page or model (a bar in every facet).
        columns: facets per row.
    """
    metrics = list(dict.fromkeys(frame[metric]))
    names = list(dict.fromkeys(frame[series]))
    rows = max(1, -(-len(metrics) // columns))
    cols = max(1, min(columns, len(metrics)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[str(m) for m in metrics], horizontal_spacing=0.09,
                        vertical_spacing=0.16 if rows > 1 else 0.0)
    for i, name in enumerate(names):
        part = frame[frame[series] == name]
        for j, m in enumerate(metrics):
            cell = part[part[metric] == m]
            fig.add_bar(x=[str(name)] * len(cell), y=cell[value], name=str(name), legendgroup=str(name), showlegend=j == 0,
                        marker_color=series_colour(name, i), hovertemplate=f"{name}<br>{m}: %{{y:.4f}}<extra></extra>",
                        row=j // cols + 1, col=j % cols + 1)
    fig.update_layout(barmode="group", bargap=0.3)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(rangemode="tozero", nticks=4, tickformat=".3~g")
    fig.update_annotations(font=dict(size=13))
    _style(fig, height or 190 * rows + 100, title)
    fig.update_layout(margin=dict(t=(48 if title else 0) + 30))  # room for the facet titles above the first row
    return fig


def position_curve(frame: pd.DataFrame, x: str, y: str, series: str, low: str | None = None, high: str | None = None,
                   title: str | None = None, x_title: str = "slot (1 = leftmost)", y_title: str = "click rate") -> go.Figure:
    """The position-bias curve: y (a click rate) along x (the slot), one line per series (a row), with interval whiskers.

    Args:
        frame: one row per (series, x) with the value and optional interval bounds.
        series: column naming the line (``row 1``, ``all rows``...); lines keep their order of appearance.
    """
    fig = go.Figure()
    for n, name in enumerate(dict.fromkeys(frame[series])):
        part = frame[frame[series] == name].sort_values(x)
        error = None
        if low and high and part[low].notna().any():
            error = dict(type="data", symmetric=False, array=(part[high] - part[y]).clip(lower=0),
                         arrayminus=(part[y] - part[low]).clip(lower=0), thickness=1.2, width=3)
        fig.add_scatter(x=part[x], y=part[y], name=str(name), mode="lines+markers", error_y=error,
                        line=dict(color=PALETTE[n % len(PALETTE)], width=2), marker=dict(size=7),
                        hovertemplate=f"{name}<br>{x_title} %{{x}}: %{{y:.4f}}<extra></extra>")
    fig.update_xaxes(title=x_title, dtick=1)
    fig.update_yaxes(title=y_title, rangemode="tozero", tickformat=".3~g")
    return _style(fig, 380, title)
