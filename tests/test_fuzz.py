"""Fuzzing (Hypothesis) of what reads outside input: the data loader and writer, the rules and
settings parsers, and the dashboard's URL parameters. Never an exception other than the clear
error of each, never a partial write."""

from __future__ import annotations

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.core.errors import DataError  # noqa: E402
from engine.data.tables import load_dataset, write_dataset  # noqa: E402
from engine.page.rerank import Settings, rules_from_dict  # noqa: E402
from engine.page.url_params import KNOBS, read_params, rules, segment_count  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
rule_keys = st.sampled_from(["exclude", "boost", "bury", "pin", "items", "categories", "brands", "item", "category", "brand", "weight", "row", "slot"])
rule_like = st.recursive(
    json_values,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(rule_keys, children, max_size=4),
    max_leaves=15,
)


@FUZZ
@given(rule_like)
def test_rules_parser_gives_rules_or_a_clear_error(obj) -> None:
    try:
        parsed = rules_from_dict(obj, "rules.json")
    except ValueError as exc:
        assert str(exc).startswith("rules.json")
        return
    assert rules_from_dict(parsed.to_dict(), "again").to_dict() == parsed.to_dict()  # what it accepts, it writes back


settings_keys = st.sampled_from(["diversity", "long_tail", "method", "visual", "candidates", "similarity", "rows", "rules", "theme", "slots"])


@FUZZ
@given(st.dictionaries(settings_keys, rule_like, max_size=5))
def test_settings_parser_gives_settings_or_a_clear_error(obj) -> None:
    try:
        parsed = Settings.from_dict(obj, "settings.json")
    except ValueError:
        return
    assert Settings.from_dict(parsed.to_dict()) == parsed


params = st.dictionaries(
    st.sampled_from([*KNOBS, "rules", "seg_k", "other"]),
    st.text(max_size=30) | st.sampled_from(["0.5", "1", "-1", "nan", "inf", "1e309", "mmr", "dpp", '{"boost":[1]}', '{"boost":[null]}',
                                            '{"pin":[{"item":"P1","row":"x","slot":1}]}', '{"boost":[{"item":"P1","weight":"abc"}]}',
                                            '{"pin":[{"item":"P1","row":100000000000000000000,"slot":1}]}', '{"exclude":{"categories":"Trousers"}}']),
    max_size=6,
)


@FUZZ
@given(params)
def test_url_parameters_are_read_or_named_as_ignored(query) -> None:
    reading = read_params(query, {**KNOBS, "rules": rules, "seg_k": segment_count})
    named = [line.split("=")[0].split(":")[0] for line in reading.ignored]
    assert sorted([*reading.values, *named]) == sorted(k for k in query if k != "other")  # each read or named, once
    for key, value in reading.values.items():
        if key in ("diversity", "long_tail", "visual"):
            assert 0.0 <= value <= 1.0
        if key == "rules":
            assert rules_from_dict(value).to_dict() == value


def test_the_reported_url_values_are_ignored_with_a_reason() -> None:
    query = {"rules": '{"exclude":{"categories":"Trousers"}}', "diversity": "abc", "long_tail": "0.3"}
    reading = read_params(query, {**KNOBS, "rules": rules})
    assert reading.values == {"long_tail": 0.3}
    assert any(line.startswith("rules=") and "exclude.categories must be a list" in line for line in reading.ignored)
    assert any(line.startswith("diversity=abc") for line in reading.ignored)


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8)
rows = st.lists(st.tuples(cells, cells, cells), min_size=0, max_size=6)


def _csv(header: list[str], body: list[tuple]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


@FUZZ
@given(items=rows, inter=rows, raw=st.binary(max_size=64), which=st.sampled_from(["text", "bytes"]))
def test_the_loader_gives_a_dataset_or_a_data_error(tmp_path_factory, items, inter, raw, which) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "items.csv").write_text(_csv(["item_id", "title", "price"], items))
    if which == "text":
        (root / "interactions.csv").write_text(_csv(["user_id", "item_id", "timestamp"], inter))
    else:
        (root / "interactions.csv").write_bytes(b"user_id,item_id,timestamp\n" + raw)
    try:
        data = load_dataset(root)
    except DataError as exc:
        assert str(root) in str(exc)
        return
    assert data.n_items == len(data.items) and len(data.interactions) > 0


@FUZZ
@given(items=rows, inter=rows)
def test_the_writer_writes_all_or_nothing(tmp_path_factory, items, inter) -> None:
    import pandas as pd

    root = tmp_path_factory.mktemp("fuzzw") / "shop"
    good_items = pd.DataFrame({"item_id": ["A", "B"], "title": ["a", "b"]})
    good_inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["A", "B"], "timestamp": ["2024-01-01", "2024-01-02"]})
    write_dataset(root, good_items, good_inter)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    frame_items = pd.DataFrame(items, columns=["item_id", "title", "price"])
    frame_inter = pd.DataFrame(inter, columns=["user_id", "item_id", "timestamp"])
    try:
        write_dataset(root, frame_items, frame_inter)
    except DataError:
        assert {p.name: p.read_bytes() for p in root.iterdir()} == before  # nothing of the failed write
        assert [p.name for p in root.parent.iterdir()] == ["shop"]
        return
    load_dataset(root)  # what it wrote loads


def test_json_of_the_issue_is_refused_cleanly() -> None:
    for text in ['{"boost":[1]}', '{"boost":[null]}', '{"pin":[{"item":"P1","row":"x","slot":1}]}', '{"boost":[{"item":"P1","weight":"abc"}]}',
                 '{"pin":[{"item":"P1","row":100000000000000000000,"slot":1}]}', '{"exclude":{"categories":"Trousers"}}']:
        with pytest.raises(ValueError, match="^rules"):
            rules_from_dict(json.loads(text), "rules")


@pytest.mark.parametrize("bad", [{"diversity": [1]}, {"rows": [{"theme": "top_picks", "slots": 10**20}]}, {"candidates": "many"}, {"rows": "x"}])
def test_settings_of_the_wrong_type_are_refused_cleanly(bad: dict) -> None:
    with pytest.raises(ValueError, match="^settings"):
        Settings.from_dict(bad, "settings")

