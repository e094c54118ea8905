"""Widget values that live in the URL (``st.query_params``) so that a link reproduces a view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

CTX_KEY = "_ctx"


@dataclass
class Context:
    """What the shared sidebar picked, for the pages."""

    data_name: str | None = None
    data_dir: str | None = None
    data_error: str | None = None
    model: str | None = None  # model directory name under DIR/models
    model_error: str | None = None
    segment: str | None = None  # segment id
    segment_error: str | None = None
    models: list[str] = field(default_factory=list)


def context() -> Context:
    return st.session_state.get(CTX_KEY) or Context()


def set_context(ctx: Context) -> None:
    st.session_state[CTX_KEY] = ctx


def _keep(key: str) -> str:
    return f"_keep_{key}"


IGNORED_KEY = "_url_ignored"


def ignore(message: str) -> None:
    """Note a URL value that was not used, for :func:`show_ignored`."""
    notes = st.session_state.setdefault(IGNORED_KEY, [])
    if message not in notes:
        notes.append(message)


def show_ignored() -> None:
    """Say, once, which values of the link were ignored and why."""
    notes = st.session_state.get(IGNORED_KEY)
    if notes:
        from dashboard import messages

        messages.warning("Ignored from the link: " + "; ".join(notes))
        st.session_state[IGNORED_KEY] = []


def url_value(param: str, default: Any, parse: Callable[[str], Any] = str) -> Any:
    """The URL's value of a parameter, read with an engine validator (``engine.page.url_params``),
    or the default when absent or invalid (then noted for :func:`show_ignored`)."""
    from engine.page.url_params import read_params

    if param not in st.query_params:
        return default
    reading = read_params({param: st.query_params[param]}, {param: parse})
    for line in reading.ignored:
        ignore(line)
    return reading.values.get(param, default)


def init(key: str, param: str | None, default: Any, parse: Callable[[str], Any] = str,
         valid: Callable[[Any], bool] | None = None) -> None:
    """Give a widget key its starting value: the browser tab's own, else the URL's, else the default.

    Widget state is dropped when a page is left; a shadow copy keeps it for coming back.
    """
    if key in st.session_state and (valid is None or valid(st.session_state[key])):
        return
    value = st.session_state.get(_keep(key))
    if value is None and param:
        value = url_value(param, None, parse)
        if value is not None and valid is not None and not valid(value):
            ignore(f"{param}={st.query_params[param]}: not one of the choices here")
    if value is None or (valid is not None and not valid(value)):
        value = default
    st.session_state[key] = value


def remember(key: str, param: str | None, fmt: Callable[[Any], str] = str) -> Any:
    """After the widget: keep its value for page switches and write it into the URL."""
    value = st.session_state.get(key)
    st.session_state[_keep(key)] = value
    if param:
        text = fmt(value)
        if st.query_params.get(param) != text:
            st.query_params[param] = text
    return value


def choice(key: str, param: str | None, options: Sequence[str], default: str | None = None) -> None:
    """``init`` for a selectbox: a value not among the options falls back to the default (or the first)."""
    fallback = default if default in options else (options[0] if options else None)
    init(key, param, fallback, str, valid=lambda v: v in options)


def fmt_float(value: float) -> str:
    return f"{float(value):.2f}"


def parse_unit(text: str) -> float:
    """A knob value in [0, 1] from the URL (the engine's reader)."""
    from engine.page.url_params import unit

    return unit(text)


def apply(values: dict[str, Any]) -> None:
    """Set widgets from a button's ``on_click`` (before they are drawn again): each widget key and its
    shadow copy, so the next run draws the new values and writes them into the URL."""
    for key, value in values.items():
        st.session_state[key] = value
        st.session_state[_keep(key)] = value
