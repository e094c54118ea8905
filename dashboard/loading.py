"""Progress of a first load (data set, model and user vectors, segments) in the main area, step by step, while it runs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

NOTE = "A first load of this data set or model: what it computes is cached, so later pages load at once."


class FirstLoad:
    """A box in the main area that appears with the first slow step, names each step while it runs
    (with a running clock) and ticks it off with its time when done.

    Steps marked ``slow=False`` (already cached) run without drawing anything, so a warm page shows
    no box at all. The steps' own elements (the sidebar's pickers) go where they always go: the box
    is never entered as a container around them.
    """

    def __init__(self, where, title: str):
        """Nothing is drawn until the first slow step.

        Args:
            where: an ``st.empty()`` placeholder in the main area, drawn before the page's own content.
            title: what is being prepared, e.g. ``Preparing demo with model quick`` (may be changed between steps).
        """
        self.where, self.title = where, title
        self.box = None
        self.header = None

    @contextlib.contextmanager
    def step(self, text: str, slow: bool = True) -> Iterator[None]:
        """Run the block as one named step."""
        if not slow:
            yield
            return
        if self.box is None:
            self.box = self.where.container(border=True)
            self.header = self.box.empty()
            self.box.caption(NOTE)
        self.header.markdown(f"**{self.title}**")
        began = time.perf_counter()
        try:
            with self.box.spinner(f"{text}…", show_time=True):
                yield
        except Exception:  # not Streamlit's stop and rerun signals: a rerun is no failure
            self.box.markdown(f":material/error: {text}: failed")
            raise
        self.box.markdown(f":material/check: {text} ({time.perf_counter() - began:.0f} s)")

    def finish(self) -> None:
        """Remove the box: the page itself follows."""
        if self.box is not None:
            self.where.empty()
