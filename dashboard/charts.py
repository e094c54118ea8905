"""Charts: pure functions from a tidy DataFrame and column names to a plotly ``go.Figure``."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#dc2626", "#0891b2", "#db2777", "#65a30d", "#4b5563", "#9333ea", "#ea580c", "#0d9488")
HIGHLIGHT = "#e11d48"


def _style(fig: go.Figure, height: int = 360, title: str | None = None) -> go.Figure:
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title,
        plot_bgcolor="white", paper_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        font=dict(family="Source Sans Pro, Helvetica Neue, Arial, sans-serif", size=13),
    )
    fig.update_xaxes(showgrid=False, linecolor="#d1d5db")
    fig.update_yaxes(gridcolor="#eef0f3", zeroline=False)
    return fig


def metric_bars(frame: pd.DataFrame, x: str, y: str, color: str, low: str | None = None, high: str | None = None,
                highlight: str | None = None, title: str | None = None, height: int = 360) -> go.Figure:
    """Grouped bars of y per x, one colour per value of ``color``, with optional CI whiskers.

    Args:
        frame: one row per (x, color) with the value and optional interval bounds.
        highlight: a value of ``color`` drawn in the highlight colour (the fine-tuned model).
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
                    marker_color=HIGHLIGHT if name == highlight else PALETTE[n % len(PALETTE)],
                    hovertemplate=f"{name}<br>%{{x}}: %{{y:.4f}}<extra></extra>")
    fig.update_layout(barmode="group", bargap=0.25)
    return _style(fig, height, title)


def training_curve(frame: pd.DataFrame, x: str, loss: str, score: str, title: str | None = None) -> go.Figure:
    """Training loss (left axis) and validation score (right axis) per epoch."""
    fig = go.Figure()
    fig.add_scatter(x=frame[x], y=frame[loss], name=loss, mode="lines+markers", line=dict(color=PALETTE[0]))
    fig.add_scatter(x=frame[x], y=frame[score], name=score, mode="lines+markers", line=dict(color=HIGHLIGHT), yaxis="y2")
    fig.update_layout(yaxis=dict(title=loss), yaxis2=dict(title=score, overlaying="y", side="right", showgrid=False), xaxis=dict(title=x))
    return _style(fig, 300, title)


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
    fig = _style(fig, 480, title)
    fig.update_layout(legend=dict(orientation="v", x=1.01, y=1, yanchor="top", font=dict(size=11)), margin=dict(t=40 if title else 10, r=10))
    return fig


def size_bars(frame: pd.DataFrame, label: str, value: str, highlight: str | None = None, title: str | None = None) -> go.Figure:
    """Horizontal bars of a value per label (segment sizes), largest on top."""
    part = frame.sort_values(value, ascending=True)
    colors = [HIGHLIGHT if highlight is not None and str(n) == str(highlight) else PALETTE[0] for n in part[label]]
    fig = go.Figure(go.Bar(x=part[value], y=part[label].astype(str), orientation="h", marker_color=colors,
                           hovertemplate="%{y}: %{x:,}<extra></extra>"))
    fig.update_yaxes(automargin=True)
    return _style(fig, max(220, 28 * len(part) + 60), title)
