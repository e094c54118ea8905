"""Memory checks before a step: a step that cannot fit says what it needs and what to do instead."""

from __future__ import annotations

import pytest

from engine.core.errors import DataError
from engine.core.memory import GIB, available_bytes, require


def test_available_memory_is_a_positive_number_of_bytes() -> None:
    assert available_bytes() > 100 * 1024**2


def test_a_step_that_fits_passes_and_one_that_does_not_names_need_and_remedy() -> None:
    require("a small step", 1024, "nothing")
    with pytest.raises(DataError, match=r"a huge step needs about 1048576\.0 GiB .* use a sample instead"):
        require("a huge step", 1024**2 * GIB, "use a sample instead")
