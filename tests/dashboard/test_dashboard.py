"""The dashboard through Streamlit's AppTest: every page runs, knobs change what shows, text is escaped, uploads fail cleanly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import DEMO_MODEL

from dashboard.cards import PLACEHOLDER_SRC, CardView, RowView, card_html, page_html
from dashboard.thumbs import encode_thumbnail

APP = Path(__file__).resolve().parents[2] / "dashboard" / "streamlit_app.py"
TIMEOUT = 180  # seconds per script run: the first run loads the model, encodes texts and builds segments
XSS = "<img src=x onerror=alert(1)>"


def app(monkeypatch, data_dir: Path, query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HOMEPAGE_DATA", str(data_dir))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at


def no_errors(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metric_values(at) -> dict[str, str]:
    """The page's headline numbers: Streamlit metrics and the homepage's metric strip (HTML)."""
    import html

    tiles = re.findall(r'class="hp-metric" data-label="([^"]*)" data-value="([^"]*)"', html_of(at))
    return {m.label: m.value for m in at.main.metric} | {html.unescape(k): html.unescape(v) for k, v in tiles}


def html_of(at) -> str:
    return "".join(h.value for h in at.html)


# ----------------------------------------------------------------------------------------------
# Cards and pictures (no Streamlit)


def test_card_escapes_product_text() -> None:
    card = CardView(item_id='x"1', title=XSS, brand="<b>brand</b>", category="a&b", price=12.5, badges=["new", "<script>"], why=[XSS])
    out = card_html(card)
    assert "<img src=x" not in out and "onerror=alert(1)>" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "<b>brand</b>" not in out and "<script>" not in out
    assert 'data-item="x&quot;1"' in out
    assert "12.50" in out


def test_card_only_shows_data_uris_and_its_own_thumbnails() -> None:
    for src in ("https://evil.example/x.png", "javascript:alert(1)", "/etc/passwd", "file:///etc/passwd",
                "/app/static/thumbs/../../etc/passwd", "/app/static/thumbs/" + "a" * 32 + ".svg", "//evil.example/app/static/thumbs/x.jpg"):
        out = card_html(CardView(item_id="1", title="t", image_src=src))
        assert src not in out and PLACEHOLDER_SRC in out
    own = "/app/static/thumbs/" + "0123456789abcdef" * 2 + ".jpg"
    assert f'src="{own}"' in card_html(CardView(item_id="1", title="t", image_src=own))


def test_static_thumbnails_are_shrunk_and_named_by_a_hash(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from dashboard.thumbs import STATIC_URL, static_thumbnail

    big = tmp_path / "big.png"  # noisy, so well over the pass-through size: shrunk to a JPEG
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (900, 1200, 4), dtype=np.uint8), "RGBA").save(big)
    url = static_thumbnail(big, tmp_path / "static")
    assert url.startswith(STATIC_URL) and url.endswith(".jpg") and str(tmp_path) not in url
    with Image.open(tmp_path / "static" / url.rsplit("/", 1)[1]) as image:
        assert image.format == "JPEG" and max(image.size) <= 320
    assert static_thumbnail(big, tmp_path / "static") == url  # the same file, the same name
    small = tmp_path / "small.png"  # a small drawing goes out as it is
    Image.new("RGB", (200, 200), (200, 30, 30)).save(small)
    assert static_thumbnail(small, tmp_path / "static").endswith(".png")
    assert static_thumbnail(tmp_path / "missing.png", tmp_path / "static") is None


def test_pictures_are_made_once_and_the_newest_kept() -> None:
    from dashboard.thumbs import Pictures

    made = []

    def make(item: int) -> str | None:
        made.append(item)
        return None if item == 3 else f"data:image/png;base64,{item}"

    pictures = Pictures(make, size=3)
    assert pictures.get([1, 2, 3, 1]) == ["data:image/png;base64,1", "data:image/png;base64,2", None, "data:image/png;base64,1"]
    assert made == [1, 2, 3]  # a missing picture is remembered too
    pictures.get([4])  # over the size: the least recently used (2) goes
    assert pictures.get([1, 3, 4]) and made == [1, 2, 3, 4]
    pictures.get([2])
    assert made == [1, 2, 3, 4, 2]


def test_page_html_of_empty_rows() -> None:
    out = page_html([RowView(title=XSS, cards=[])])
    assert "&lt;img" in out and "No items in this row" in out


def test_cards_show_scaled_prices_as_a_level_not_a_number() -> None:
    from dashboard.views import card_fields, item_card

    scaled = pd.DataFrame({"item_id": [f"A{i}" for i in range(10)], "title": ["t"] * 10,
                           "price": [0.04994067796610169, 0.0123, 0.0254, 0.0311, 0.0402, 0.0508, 0.0677, 0.0812, 0.1101, 0.2033]})
    fields = card_fields(scaled)
    out = card_html(item_card(fields, 0, None))
    assert "0.0499" not in out.split('title="Price level')[0]  # the number only in the tooltip
    assert "price level 3/5" in out and 'class="hp-price level"' in out and "scaled, not a currency" in out
    money = pd.DataFrame({"item_id": ["B1", "B2"], "title": ["t", "u"], "price": [54.99, 7.5]})
    out = card_html(item_card(card_fields(money), 0, None))
    assert '<div class="hp-price">54.99</div>' in out
    assert card_html(item_card(card_fields(money.drop(columns="price")), 0, None)).count('<div class="hp-price">') == 1


def test_each_model_keeps_one_colour_on_every_chart() -> None:
    from dashboard import charts
    from dashboard.views import MODEL_LABELS, models_frame

    labels = list(MODEL_LABELS.values())
    colours = [charts.series_colour(name) for name in labels]
    assert len(set(colours)) == len(colours), "two models share a colour"
    assert charts.series_colour("fine-tuned transformer") == charts.HIGHLIGHT
    frame = models_frame({"ease": {"ndcg@10": 0.1}, "finetuned": {"ndcg@10": 0.2}}, ("ndcg@10",))
    fig = charts.metric_bars(frame, "metric", "value", "model", highlight="fine-tuned transformer", title="Accuracy")
    by_name = {bar.name: bar.marker.color for bar in fig.data}
    assert by_name == {"EASE": charts.series_colour("EASE"), "fine-tuned transformer": charts.HIGHLIGHT}
    # The legend sits at the bottom of the figure, away from the title at the top.
    assert fig.layout.legend.yref == "container" and fig.layout.legend.yanchor == "bottom" and fig.layout.title.yanchor == "top"


def test_segment_value_facets_have_their_own_y_axes() -> None:
    from dashboard import charts
    from dashboard.views import models_frame

    rows = {"segment page": {"ndcg@10": 0.05, "ild@10": 0.8}, "personalised top-k": {"ndcg@10": 0.07, "ild@10": 0.7}}
    fig = charts.metric_facets(models_frame(rows, ("ndcg@10", "ild@10")), "metric", "value", "model")
    axes = {bar.yaxis for bar in fig.data}
    assert axes == {"y", "y2"} and fig.layout.yaxis2.matches is None
    assert [a.text for a in fig.layout.annotations] == ["NDCG@10", "Diversity (ILD@10)"]
    assert sum(bool(bar.showlegend) for bar in fig.data) == 2  # one legend entry per page kind


def test_thumbnail_of_missing_or_broken_picture_is_none(tmp_path: Path) -> None:
    assert encode_thumbnail(None) is None
    assert encode_thumbnail(tmp_path / "missing.png") is None
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert encode_thumbnail(broken) is None


def test_thumbnail_shrinks_large_pictures(tmp_path: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.png"
    Image.effect_noise((1200, 900), 60).convert("RGB").save(big)
    uri = encode_thumbnail(big)
    assert uri.startswith("data:image/jpeg;base64,")
    assert len(uri) < big.stat().st_size


# ----------------------------------------------------------------------------------------------
# `homepage app`


def test_homepage_app_passes_streamlit_args(trained_demo: Path, monkeypatch) -> None:
    from engine.cli import app, parser

    calls = []
    monkeypatch.setattr(app, "run_until_stopped", lambda command, env, cwd: calls.append((command, env, cwd)) or 0)
    monkeypatch.delenv("HOMEPAGE_PASSWORD_HASH", raising=False)
    assert parser.main(["app", str(trained_demo), "--server.port", "8601", "--server.headless", "true"]) == 0
    command, env, cwd = calls[-1]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("dashboard/streamlit_app.py")
    # This machine only, unless the user names an address.
    assert command[5:] == ["--server.port", "8601", "--server.headless", "true", "--server.address", "127.0.0.1"]
    assert env["HOMEPAGE_DATA"] == str(trained_demo.resolve())
    # Without DIR: the demo store, and "8601" is not taken for a directory.
    monkeypatch.setattr(app, "DEMO_DIR", trained_demo)
    assert parser.main(["app", "--server.port", "8601"]) == 0
    assert calls[-1][0][5:7] == ["--server.port", "8601"] and calls[-1][1]["HOMEPAGE_DATA"] == str(trained_demo.resolve())


def test_homepage_app_refuses_to_share_without_a_login(trained_demo: Path, monkeypatch, capsys) -> None:
    from engine.cli import app, parser
    from engine.core.access import hash_password

    calls = []
    monkeypatch.setattr(app, "run_until_stopped", lambda command, env, cwd: calls.append(command) or 0)
    monkeypatch.setattr(app, "SECRETS", trained_demo / "no-secrets.toml")
    monkeypatch.delenv("HOMEPAGE_PASSWORD_HASH", raising=False)
    assert parser.main(["app", str(trained_demo), "--server.address", "0.0.0.0"]) == 2
    assert "refusing to listen on 0.0.0.0 without a login" in capsys.readouterr().err and not calls
    monkeypatch.setenv("HOMEPAGE_PASSWORD_HASH", "not-a-hash")
    assert parser.main(["app", str(trained_demo), "--server.address=0.0.0.0"]) == 2
    assert "HOMEPAGE_PASSWORD_HASH is not a hash" in capsys.readouterr().err and not calls
    monkeypatch.setenv("HOMEPAGE_PASSWORD_HASH", hash_password("s3cret", iterations=1000))
    assert parser.main(["app", str(trained_demo), "--server.address", "0.0.0.0"]) == 0
    assert calls[-1][-2:] == ["--server.address", "0.0.0.0"]


def test_homepage_app_on_a_bad_directory_is_a_clear_error(tmp_path: Path, capsys) -> None:
    from engine.cli import parser as cli

    assert cli.main(["app", str(tmp_path / "nowhere")]) == 2
    assert "not a data directory" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Model and data


def test_model_page_shows_data_and_metrics(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/model_data.py").run()
    no_errors(at)
    values = metric_values(at)
    assert values["Items"] == "600" and values["Users"] == "800"
    manifest = json.loads((trained_demo / "models" / DEMO_MODEL / "manifest.json").read_text())
    assert values["NDCG@10"] == f"{manifest['metrics']['ndcg@10']:.4f}"
    assert at.sidebar.selectbox(key="side_model").value == DEMO_MODEL
    assert at.query_params["data"] == [trained_demo.name] or at.query_params["data"] == trained_demo.name


def test_upload_shows_the_engines_error_not_a_traceback(trained_demo: Path, monkeypatch, tmp_path: Path) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/model_data.py").run()
    at.text_input(key="model_upload_name").input("bad-upload")
    at.file_uploader(key="model_upload_items").upload("catalogue.csv", b"item_id,title\nA,Red shoe\nB,Blue hat\n", "text/csv")
    at.file_uploader(key="model_upload_interactions").upload("events.csv", b"user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,Z,2024-01-02\n", "text/csv")
    at.button(key="FormSubmitter:model_upload_form-Validate and add").click().run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.error]  # shown as plain text: Markdown characters escaped
    assert any("events.csv" in e and "missing from the catalogue" in e for e in errors), errors
    assert not (trained_demo.parent / "bad-upload").exists()


def test_a_latin1_upload_is_named_with_its_line_and_taken_with_the_encoding_chosen(trained_demo: Path, monkeypatch) -> None:
    items = "item_id,title\nA,Caf\u00e9 cr\u00e8me\nB,Blue hat\n".encode("latin-1")
    events = b"user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,B,2024-01-02\nu2,A,2024-01-03\n"

    def submit(at, name: str, encoding: str | None) -> None:
        at.text_input(key="model_upload_name").input(name)
        at.file_uploader(key="model_upload_items").upload("cafe.csv", items, "text/csv")
        at.file_uploader(key="model_upload_interactions").upload("events.csv", events, "text/csv")
        if encoding:
            at.selectbox(key="model_upload_encoding").select(encoding)
        at.button(key="FormSubmitter:model_upload_form-Validate and add").click().run()

    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/model_data.py").run()
    submit(at, "latin-shop", None)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any("cafe.csv: line 2" in e and "choose the file's encoding in the form" in e for e in errors), errors
    assert not any("--encoding" in e for e in errors)  # the form has no command-line flags
    submit(at, "latin-shop", "latin-1")
    assert not at.exception and not at.error
    from engine.data.tables import load_dataset

    assert load_dataset(trained_demo.parent / "latin-shop").items["title"].iat[0] == "Caf\u00e9 cr\u00e8me"


def test_opening_a_directory_outside_the_data_roots_is_refused(trained_demo: Path, monkeypatch, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "items.csv").write_text("item_id,title\nA,a\n")
    at = app(monkeypatch, trained_demo)
    at.run()
    at.text_input(key="side_open_path").input(str(outside))
    at.button(key="side_open").click().run()
    assert not at.exception
    errors = [e.value.replace("\\", "") for e in at.sidebar.error]
    assert any("only data directories inside the data roots" in e for e in errors), errors
    assert str(tmp_path) not in " ".join(errors)


def test_upload_of_a_valid_data_set_selects_it(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/model_data.py").run()
    at.text_input(key="model_upload_name").input("uploaded-shop")
    at.file_uploader(key="model_upload_items").upload("items.csv", b"item_id,title,price\nA,Red shoe,10\nB,Blue hat,12\n", "text/csv")
    at.file_uploader(key="model_upload_interactions").upload(
        "interactions.csv", b"user_id,item_id,timestamp\nu1,A,2024-01-01\nu1,B,2024-01-02\nu2,B,2024-01-03\n", "text/csv")
    at.button(key="FormSubmitter:model_upload_form-Validate and add").click().run()
    assert not at.exception
    target = trained_demo.parent / "uploaded-shop"
    try:
        assert (target / "items.csv").exists()
        assert at.sidebar.selectbox(key="side_data").value == "uploaded-shop"
        assert any("No trained model" in i.value for i in at.info)
    finally:
        import shutil

        shutil.rmtree(target, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Homepage preview, Compare, Segments


def items_shown(at) -> list[str]:
    return re.findall(r'data-item="([^"]+)"', html_of(at))


def test_homepage_draws_the_segment_page_and_the_slider_changes_the_metrics(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    no_errors(at)
    shown = items_shown(at)
    assert len(shown) >= 30
    pictures = re.findall(r'<img src="(/app/static/thumbs/[0-9a-f]{32}\.(?:jpg|png)|data:image/png;base64,)', html_of(at))
    assert len(pictures) >= 30  # data: URIs (as configured) or the app's own thumbnails
    before = metric_values(at)
    assert set(before) >= {"NDCG@10", "Recall@10", "Long-tail share@10", "Diversity (ILD@10)"}
    at.slider(key="home_diversity").set_value(0.8).run()
    no_errors(at)
    after = metric_values(at)
    assert after != before
    assert after["Diversity (ILD@10)"] != before["Diversity (ILD@10)"]
    assert items_shown(at) != shown
    assert at.query_params["diversity"] in ("0.80", ["0.80"])
    assert "diversity=0.80" in html_of(at)


def test_picking_another_segment_changes_the_items(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    picker = at.sidebar.selectbox(key="side_segment")
    first, shown = picker.value, items_shown(at)
    assert len(picker.options) >= 2
    picker.select_index(1).run()
    no_errors(at)
    assert at.sidebar.selectbox(key="side_segment").value != first
    assert items_shown(at) != shown


def test_url_settings_reproduce_a_view(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo, {"diversity": "0.40", "long_tail": "0.25", "method": "dpp", "segment": "nonsense"})
    at.run()
    no_errors(at)
    assert at.slider(key="home_diversity").value == pytest.approx(0.40)
    assert at.slider(key="home_long_tail").value == pytest.approx(0.25)
    assert at.selectbox(key="home_method").value == "dpp"
    assert "diversity=0.40 long_tail=0.25" in html_of(at)


def test_rules_pin_and_exclude_show_on_the_page(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    shown = items_shown(at)
    pinned, dropped = shown[-1], shown[0]
    rules = {"pin": [{"item": pinned, "row": 1, "slot": 1}], "exclude": {"items": [dropped]}}
    at = app(monkeypatch, trained_demo, {"rules": json.dumps(rules)})
    at.run()
    no_errors(at)
    now = items_shown(at)
    assert now[0] == pinned and dropped not in now
    assert "Pinned" in html_of(at)


def test_bad_rules_are_a_message_not_a_traceback(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo, {"rules": json.dumps({"exclude": {"categories": ["No Such Category"]}})})
    at.run()
    assert not at.exception
    assert any("No Such Category" in e.value.replace("\\", "") for e in at.error)
    assert len(items_shown(at)) >= 30  # the page still shows, without the rules


@pytest.mark.parametrize("query, named", [
    ({"rules": '{"boost":[1]}'}, "rules="),
    ({"rules": '{"boost":[null]}'}, "rules="),
    ({"rules": '{"pin":[{"item":"P00001","row":"x","slot":1}]}'}, "rules="),
    ({"rules": '{"boost":[{"item":"P00001","weight":"abc"}]}'}, "rules="),
    ({"rules": '{"pin":[{"item":"P00001","row":100000000000000000000,"slot":1}]}'}, "rules="),
    ({"rules": '{"exclude":{"categories":"Trousers"}}'}, "exclude.categories must be a list"),
    ({"diversity": "abc", "long_tail": "7"}, "diversity=abc"),
])
def test_bad_url_values_are_named_and_the_page_still_works(trained_demo: Path, monkeypatch, query: dict, named: str) -> None:
    at = app(monkeypatch, trained_demo, query)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any(w.startswith("Ignored from the link") and named in w for w in warnings), warnings
    assert len(items_shown(at)) >= 30


def test_data_values_never_render_as_markdown(trained_demo: Path, monkeypatch) -> None:
    link = "[click me](http://example.org)"
    at = app(monkeypatch, trained_demo, {"rules": json.dumps({"exclude": {"items": [link]}})})
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert any("\\[click me\\]\\(http" in e for e in shown), shown  # escaped: shown as text, never a link
    assert not any(str(trained_demo.parent) in e for e in shown)  # no server path


def test_compare_page(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo, {"b_diversity": "0.60"})
    at.run()
    at.switch_page("app_pages/compare.py").run()
    no_errors(at)
    table = at.dataframe[0].value
    assert {"A", "B", "B − A", "95% CI of B − A"} <= set(table.columns)
    ndcg = table[table["metric"] == "NDCG@10"].iloc[0]
    assert ndcg["B − A"] == pytest.approx(ndcg["B"] - ndcg["A"])
    assert ndcg["95% CI of B − A"].startswith("[")
    pages = [h.value for h in at.html]
    assert len(pages) == 2 and "hp-change" in pages[1]
    assert re.search(r"hp-change (up|down|new)", pages[1])
    assert len(at.get("plotly_chart")) == 1


def test_segments_page(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo)
    at.run()
    at.switch_page("app_pages/segments.py").run()
    no_errors(at)
    table = at.dataframe[0].value
    assert (table["size"] >= 20).all() and {"learned", "rule"} <= set(table["kind"])
    assert "user_id" not in table.columns
    assert len(at.get("plotly_chart")) == 3  # map, sizes, value of segmentation
    at.selectbox(key="seg_method").set_value("gmm").run()
    no_errors(at)


def test_product_text_is_escaped_on_the_page(trained_demo: Path, monkeypatch, tmp_path: Path) -> None:
    import shutil

    at = app(monkeypatch, trained_demo)
    at.run()
    first_row = items_shown(at)[:4]
    evil = tmp_path / "evil"
    shutil.copytree(trained_demo, evil)
    items = pd.read_csv(evil / "items.csv", dtype=str, keep_default_na=False)
    hit = items["item_id"].isin(first_row)
    items.loc[hit, "title"] = XSS + " " + items.loc[hit, "title"]
    items.loc[hit, "brand"] = "<script>alert(2)</script>"
    items.to_csv(evil / "items.csv", index=False)
    at = app(monkeypatch, evil)
    at.run()
    no_errors(at)
    page = html_of(at)
    assert set(first_row) <= set(items_shown(at))
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page.lower()
    assert "<img src=x" not in page and "<script>" not in page.lower()


def test_training_from_the_page_shows_progress_and_selects_the_model(trained_demo: Path, monkeypatch, tmp_path: Path) -> None:
    import shutil

    import engine.models.two_tower
    from engine.models.two_tower import RankerConfig

    class TinyConfig(RankerConfig):
        """The page's config with test-sized defaults."""

        def __init__(self, **kwargs):
            super().__init__(**{**dict(dim=32, user_layers=1, user_heads=1, max_epochs=1, n_negatives=32, min_steps_per_epoch=5), **kwargs})

    monkeypatch.setattr(engine.models.two_tower, "RankerConfig", TinyConfig)
    fresh = tmp_path / "fresh"
    shutil.copytree(trained_demo, fresh, ignore=shutil.ignore_patterns("models"))
    at = app(monkeypatch, fresh)
    at.run()
    assert not at.exception
    assert any("No trained model" in m.value for m in at.markdown)
    at.selectbox(key="home_train_mode").set_value("frozen")
    at.number_input(key="home_train_minutes").set_value(1.0)
    at.button(key="FormSubmitter:home_train_form-Train a model").click().run()
    no_errors(at)
    models = list((fresh / "models").glob("*/manifest.json"))
    assert len(models) == 1
    assert at.sidebar.selectbox(key="side_model").value == models[0].parent.name
    assert len(items_shown(at)) >= 30  # the homepage appears once the model is there


def test_rules_table_round_trip() -> None:
    from dashboard.rules_form import rules_to_table, table_to_rules

    rules = {"exclude": {"items": ["P1"], "categories": ["Phones"]}, "boost": [{"category": "Books", "weight": 0.3}],
             "bury": [{"brand": "Basico", "weight": 0.5}], "pin": [{"item": "P9", "row": 2, "slot": 3}]}
    assert table_to_rules(rules_to_table(rules)) == rules
    assert table_to_rules(rules_to_table({})) == {}


def test_the_url_names_data_sets_never_paths(trained_demo: Path, monkeypatch) -> None:
    at = app(monkeypatch, trained_demo, {"data": "/etc", "model": "../../x"})
    at.run()
    no_errors(at)
    assert at.sidebar.selectbox(key="side_data").value == trained_demo.name
    assert at.sidebar.selectbox(key="side_model").value == DEMO_MODEL
