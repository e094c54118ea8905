"""Messages with data in them, shown as plain text: a product id such as ``[click me](http://...)``
or a server path never becomes Markdown, a link or a leak of where the server keeps its files."""

from __future__ import annotations

import re

import streamlit as st

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"]+/)+([^\s/:'\"]*)")


def plain(text: object) -> str:
    """``text`` with every Markdown character escaped and absolute paths cut to their last part."""
    value = _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "/", str(text))
    return _MARKDOWN.sub(r"\\\1", value)


def error(text: object) -> None:
    st.error(plain(text))


def warning(text: object) -> None:
    st.warning(plain(text))


def info(text: object) -> None:
    st.info(plain(text))
