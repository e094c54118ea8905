"""Every Streamlit cache of the dashboard: data sets, models, pictures and engine results.

Resources (data sets, models) are shared by all sessions and never mutated by callers. Data caches
are bounded with ``max_entries``. Widget values come in as arguments; nothing here reads a widget.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from engine.data.tables import Dataset, load_dataset
from engine.core.errors import ModelError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = PROJECT_ROOT / "data" / "demo"
ENV_DATA = "HOMEPAGE_DATA"


# ----------------------------------------------------------------------------------------------
# Where data sets and models are


def default_data_dir() -> Path:
    """``$HOMEPAGE_DATA``, else the demo store."""
    value = os.environ.get(ENV_DATA, "").strip()
    return Path(value).expanduser().resolve() if value else DEMO_DIR


def is_data_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f"items.{ext}").is_file() for ext in ("csv", "parquet"))


def upload_root() -> Path:
    """Uploaded data sets are written beside the default data directory (inside the data roots)."""
    return default_data_dir().parent


def allowed_roots() -> list[Path]:
    """Where the app may open, upload into and train (``engine.core.access.data_roots``)."""
    from engine.core.access import data_roots

    return data_roots(default_data_dir())


def may_change(path: Path) -> bool:
    """Whether the app may open or change the data directory at ``path``."""
    from engine.core.access import within_roots

    return within_roots(path, allowed_roots())


def data_choices() -> dict[str, str]:
    """Data sets the sidebar offers: name -> absolute path, the default first.

    Scans the default directory, its siblings, ``data/`` and ``benchmarks/out/data/`` of the project.
    Names are what the URL stores, so a link can never name an arbitrary path.
    """
    found: dict[str, str] = {}
    seen: set[Path] = set()

    def add(path: Path) -> None:
        path = path.resolve()
        if path in seen or not is_data_dir(path):
            return
        seen.add(path)
        name, n = path.name, 2
        while name in found:
            name, n = f"{path.name}-{n}", n + 1
        found[name] = str(path)

    default = default_data_dir()
    add(default)
    for parent in (default.parent, PROJECT_ROOT / "data", PROJECT_ROOT / "benchmarks" / "out" / "data"):
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if not child.name.startswith("."):
                    add(child)
    return found


def data_key(path: str) -> str:
    """Cache key of a data directory: its path and the modification times of its tables."""
    root = Path(path)
    stamps = []
    for table in ("items", "interactions", "users"):
        for ext in ("csv", "parquet"):
            f = root / f"{table}.{ext}"
            if f.exists():
                stamps.append(f"{table}.{ext}:{f.stat().st_mtime_ns}")
    return f"{root}|{'|'.join(stamps)}"


ENV_MODELS = "HOMEPAGE_MODELS"


def _model_dirs(root: Path) -> list[Path]:
    """A model directory itself, or the complete models inside a folder."""
    if (root / "manifest.json").is_file():
        return [root]
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "manifest.json").is_file()]


def model_choices(data_dir: str) -> dict[str, str]:
    """Models offered for a data set, newest first: name -> model directory.

    ``DIR/models/*``; ``<X>/models/<name>`` for a data set at ``<X>/data/<name>`` (where the
    benchmarks keep theirs); and models named by ``$HOMEPAGE_MODELS`` (paths separated by
    ``os.pathsep``) whose manifest names this data set. A model of other data fails to load with
    the engine's fingerprint message.
    """
    root = Path(data_dir)
    found = _model_dirs(root / "models")
    sibling = root.parent.parent / "models" / root.name
    if root.parent.name == "data" and (sibling / "manifest.json").is_file():
        found.append(sibling)
    for entry in filter(None, os.environ.get(ENV_MODELS, "").split(os.pathsep)):
        for path in _model_dirs(Path(entry).expanduser()):
            try:
                named = json.loads((path / "manifest.json").read_text()).get("dataset")
            except (OSError, json.JSONDecodeError, AttributeError):
                continue
            if named == root.resolve().name:
                found.append(path)
    found.sort(key=lambda p: ((p / "manifest.json").stat().st_mtime_ns, p.name), reverse=True)
    out: dict[str, str] = {}
    for path in found:
        name, n = path.name, 2
        while name in out and out[name] != str(path.resolve()):
            name, n = f"{path.name}-{n}", n + 1
        out[name] = str(path.resolve())
    return out


def model_path(data_dir: str, model: str) -> Path:
    choices = model_choices(data_dir)
    if model not in choices:
        raise ModelError(f"{data_dir}: no model named {model!r}")
    return Path(choices[model])


def model_key(data_dir: str, model: str) -> str:
    """Cache key of a model: its directory and its manifest's modification time."""
    path = model_path(data_dir, model)
    manifest = path / "manifest.json"
    return f"{path}|{manifest.stat().st_mtime_ns if manifest.exists() else 0}"


def _path_of(mkey: str) -> Path:
    return Path(mkey.rsplit("|", 1)[0])


# ----------------------------------------------------------------------------------------------
# Data (a resource: one shared copy per process)


_LOADED: set[str] = set()  # data sets loaded in this process (to tell a first, slow load)


@st.cache_resource(max_entries=4, show_spinner="Loading the data set…")
def _dataset(key: str) -> Dataset:
    data = load_dataset(key.split("|", 1)[0])
    _LOADED.add(key)
    return data


def dataset(path: str) -> Dataset:
    """The loaded data directory; raises the engine's DataError with its message."""
    return _dataset(data_key(path))


def dataset_loaded(path: str) -> bool:
    """Whether this process has loaded the data set already (False: the next call may take a while)."""
    return data_key(path) in _LOADED


@st.cache_resource(max_entries=4, show_spinner=False)
def _card_fields(key: str) -> dict[str, list]:
    from dashboard.views import card_fields as build

    return build(_dataset(key).items)


def card_fields(path: str) -> dict[str, list]:
    """What product cards show of each item (read-only lists, shared by all sessions)."""
    return _card_fields(data_key(path))


@st.cache_resource(max_entries=4, show_spinner=False)
def _category_and_brand_names(key: str) -> tuple[list[str], list[str]]:
    items = _dataset(key).items
    return tuple(sorted(items[column].astype(str).unique()) if column in items else [] for column in ("category", "brand"))


def category_and_brand_names(path: str) -> tuple[list[str], list[str]]:
    """The catalogue's categories and brands, sorted (read-only lists, shared by all sessions)."""
    return _category_and_brand_names(data_key(path))


def manifest(data_dir: str, model: str) -> dict:
    from engine.models.store import read_manifest

    return read_manifest(model_path(data_dir, model))


# ----------------------------------------------------------------------------------------------
# The engine's shared context and segments


@st.cache_resource(max_entries=2, show_spinner="Preparing the model's view of the users…")
def _studio(dkey: str, mkey: str):
    from engine.studio.context import load_studio

    return load_studio(_dataset(dkey), _path_of(mkey))  # the data set this process holds (a million users: 18 s to read again)


def studio(data_dir: str, model: str):
    """The engine's :class:`~engine.studio.context.Studio` (segments, pages and their held-out judge) for a model."""
    return _studio(data_key(data_dir), model_key(data_dir, model))


_BUILT: set[tuple] = set()  # segment catalogues built in this process (to tell a first, slow load)


@st.cache_resource(max_entries=8, show_spinner="Finding segments…")
def _catalogue(dkey: str, mkey: str, method: str, k: int | None):
    from engine.studio.segments import segment_catalogue as engine_catalogue

    catalogue = engine_catalogue(_studio(dkey, mkey), method, k)
    _BUILT.add((dkey, mkey, method, k))
    return catalogue


def catalogue_built(data_dir: str, model: str, method: str = "kmeans", k: int | None = None) -> bool:
    """Whether this process has built the segments already (False: the next call may take a while)."""
    return (data_key(data_dir), model_key(data_dir, model), method, k) in _BUILT


def segment_catalogue(data_dir: str, model: str, method: str = "kmeans", k: int | None = None):
    """``engine.studio.segments.segment_catalogue``: the learned clustering, and ``visible``, every segment that may be shown."""
    return _catalogue(data_key(data_dir), model_key(data_dir, model), method, k)


def _segment(dkey: str, mkey: str, method: str, k: int | None, segment_id: str):
    return _catalogue(dkey, mkey, method, k).get(segment_id)


def segment(data_dir: str, model: str, segment_id: str, method: str = "kmeans", k: int | None = None):
    """One visible segment by id (the engine refuses segments under the minimum size)."""
    return _segment(data_key(data_dir), model_key(data_dir, model), method, k, segment_id)


# ----------------------------------------------------------------------------------------------
# Layouts and their judgement (bounded data caches; settings travel as canonical JSON text)


def settings_json(settings) -> str:
    """Canonical text of an ``engine.rerank.Settings``: the cache key of everything built from it."""
    return json.dumps(settings.to_dict(), sort_keys=True, separators=(",", ":"))


def _settings(text: str):
    from engine.page.rerank import Settings

    return Settings.from_dict(json.loads(text))


@st.cache_data(max_entries=256, show_spinner=False)
def _layout(dkey: str, mkey: str, method: str, k: int | None, segment_id: str, settings_text: str, evaluate: bool = True):
    from engine.page.judge import judged_layout
    from engine.page.rerank import rank_segment

    seg = _segment(dkey, mkey, method, k, segment_id)
    build = judged_layout if evaluate else rank_segment
    return build(_studio(dkey, mkey), seg, _settings(settings_text))


def layout(data_dir: str, model: str, segment_id: str, settings, method: str = "kmeans", k: int | None = None, evaluate: bool = True):
    """The segment's :class:`~engine.page.layout.Layout` for the settings (with held-out metrics unless
    ``evaluate`` is False); raises ValueError for bad rules."""
    return _layout(data_key(data_dir), model_key(data_dir, model), method, k, segment_id, settings_json(settings), evaluate)


@st.cache_data(max_entries=256, show_spinner=False)
def _metrics(dkey: str, mkey: str, method: str, k: int | None, segment_id: str, settings_text: str) -> dict:
    from engine.page.judge import evaluate_layout

    seg = _segment(dkey, mkey, method, k, segment_id)
    page = _layout(dkey, mkey, method, k, segment_id, settings_text, False)
    return evaluate_layout(_studio(dkey, mkey), page, seg).metrics


def metrics(data_dir: str, model: str, segment_id: str, settings, method: str = "kmeans", k: int | None = None) -> dict:
    """``engine.page.judge.evaluate_layout`` metrics of the settings' page (drawn after the page itself)."""
    return _metrics(data_key(data_dir), model_key(data_dir, model), method, k, segment_id, settings_json(settings))


@st.cache_data(max_entries=64, show_spinner=False)
def _compare(dkey: str, mkey: str, method: str, k: int | None, segment_id: str, text_a: str, text_b: str) -> dict:
    from engine.page.judge import compare as engine_compare

    seg = _segment(dkey, mkey, method, k, segment_id)
    a = _layout(dkey, mkey, method, k, segment_id, text_a)
    b = _layout(dkey, mkey, method, k, segment_id, text_b)
    return engine_compare(_studio(dkey, mkey), seg, a, b)


def compare(data_dir: str, model: str, segment_id: str, settings_a, settings_b, method: str = "kmeans", k: int | None = None) -> dict:
    """``engine.page.judge.compare`` of the two settings' layouts (B against A)."""
    return _compare(data_key(data_dir), model_key(data_dir, model), method, k, segment_id, settings_json(settings_a), settings_json(settings_b))


@st.cache_data(max_entries=32, show_spinner="Sweeping the diversity and long-tail knobs…")
def _frontier(dkey: str, mkey: str, method: str, k: int | None, segment_id: str, settings_text: str):
    from engine.page.judge import frontier as engine_frontier

    seg = _segment(dkey, mkey, method, k, segment_id)
    return engine_frontier(_studio(dkey, mkey), seg, _settings(settings_text))


def frontier(data_dir: str, model: str, segment_id: str, settings, method: str = "kmeans", k: int | None = None):
    """``engine.page.judge.frontier`` around the settings (their knobs swept over the grid)."""
    return _frontier(data_key(data_dir), model_key(data_dir, model), method, k, segment_id, settings_json(settings))


@st.cache_data(max_entries=64, show_spinner="Judging the segment page against personal and popular pages…")
def _segment_value(dkey: str, mkey: str, method: str, k: int | None, segment_id: str):
    from engine.page.judge import segment_value as engine_value

    seg = _segment(dkey, mkey, method, k, segment_id)
    return engine_value(_studio(dkey, mkey), seg)


def segment_value(data_dir: str, model: str, segment_id: str, method: str = "kmeans", k: int | None = None):
    """``engine.page.judge.segment_value``: the segment page vs personalised top-k vs one popular page."""
    return _segment_value(data_key(data_dir), model_key(data_dir, model), method, k, segment_id)


@st.cache_data(max_entries=16, show_spinner=False)
def _user_map(dkey: str, mkey: str, method: str, k: int | None, rule_segment_id: str | None):
    from engine.studio.segment_map import user_map as engine_map

    catalogue = _catalogue(dkey, mkey, method, k)
    if rule_segment_id:
        chosen = catalogue.get(rule_segment_id)
        groups = [(chosen.name, chosen.members)]
    else:
        groups = [(s.name, s.members) for s in catalogue.learned.segments]
    return engine_map(_studio(dkey, mkey), groups)


def user_map(data_dir: str, model: str, method: str = "kmeans", k: int | None = None, rule_segment_id: str | None = None):
    """``engine.segment_map.user_map`` coloured by learned segment, or by membership of one rule segment."""
    return _user_map(data_key(data_dir), model_key(data_dir, model), method, k, rule_segment_id)


# ----------------------------------------------------------------------------------------------
# Pictures


@st.cache_resource(max_entries=8, show_spinner=False)
def _pictures(dkey: str, static: bool):
    from dashboard.thumbs import Pictures, encode_thumbnail, static_thumbnail

    data, make = _dataset(dkey), static_thumbnail if static else encode_thumbnail
    return Pictures(lambda item: make(data.image_path(item)))


def thumbnails(data_dir: str, item_indices) -> list[str | None]:
    """The pictures of items for their cards (files inside the data directory only), None where
    missing: data: URIs (the project's config), or URLs of the app's static thumbnails where static
    serving is on. Immutable strings, kept per data set and shared by all sessions."""
    static = bool(st.get_option("server.enableStaticServing"))
    return _pictures(data_key(data_dir), static).get(int(i) for i in item_indices)


# ----------------------------------------------------------------------------------------------
# Reports on disk


@st.cache_data(max_entries=8, show_spinner=False)
def _baselines_report(path: str, mtime_ns: int) -> dict | None:
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) and isinstance(report.get("models"), dict) else None


def baselines_report(data_dir: str) -> dict | None:
    """``DIR/baselines.json`` as written by ``homepage baselines --json`` (or the Model page), or None."""
    path = Path(data_dir) / "baselines.json"
    if not path.is_file():
        return None
    return _baselines_report(str(path), path.stat().st_mtime_ns)



# ----------------------------------------------------------------------------------------------
# Feedback (the logged table enters the caches unhashed, keyed by a digest of its file)


@st.cache_data(max_entries=4, show_spinner="Reading the feedback…")
def _feedback_upload(dkey: str, name: str, digest: str, _raw: bytes):
    import tempfile

    from engine.core.errors import DataError
    from engine.data.feedback import read_feedback

    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="feedback-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(_raw)
        try:
            return read_feedback(path, _dataset(dkey))
        except DataError as exc:  # the message names the upload, not the temporary file
            raise DataError(str(exc).replace(str(path), name)) from None


def feedback_upload(data_dir: str, name: str, raw: bytes):
    """``engine.data.feedback.read_feedback`` of uploaded bytes (``name`` ends in .csv or .parquet), checked
    against the data set; returns (table, digest). Raises the engine's DataError naming the upload."""
    import hashlib

    from engine.core.errors import DataError
    from engine.data.feedback import FEEDBACK_SUFFIXES

    if Path(name).suffix.lower() not in FEEDBACK_SUFFIXES:
        raise DataError(f"{name}: a feedback file ends in .csv or .parquet")
    digest = hashlib.sha1(raw).hexdigest()
    return _feedback_upload(data_key(data_dir), name, digest, raw), digest


@st.cache_data(max_entries=4, show_spinner="Reading the feedback…")
def _feedback_file(dkey: str, path: str, mtime_ns: int):
    from engine.data.feedback import read_feedback

    return read_feedback(path, _dataset(dkey))


def feedback_file(data_dir: str, path: Path):
    """``read_feedback`` of a file on the server (the caller checks it lies inside the data roots); returns (table, digest)."""
    path = Path(path).expanduser().resolve()
    mtime = path.stat().st_mtime_ns
    return _feedback_file(data_key(data_dir), str(path), mtime), f"{path}|{mtime}"


def _layouts(text: str) -> list:
    from engine.page.layout import Layout

    return [Layout.from_dict(obj) for obj in json.loads(text)]


def layouts_json(layouts) -> str:
    """Canonical text of layouts: the cache key of what is built from them."""
    return json.dumps([layout.to_dict() for layout in layouts], sort_keys=True, separators=(",", ":"))


@st.cache_data(max_entries=8, show_spinner="Counting clicks by position, row theme, badge and segment…")
def _feedback_report(dkey: str, mkey: str, method: str, k: int | None, digest: str, layouts_text: str, _feedback):
    from engine.page.feedback_report import feedback_report as engine_report

    segments = _catalogue(dkey, mkey, method, k).learned.segments
    return engine_report(_studio(dkey, mkey), _feedback, _layouts(layouts_text), segments)


def feedback_report(data_dir: str, model: str, digest: str, feedback, layouts, method: str = "kmeans", k: int | None = None) -> dict:
    """``engine.page.feedback_report.feedback_report`` of a feedback table (``digest`` names its file's content)."""
    return _feedback_report(data_key(data_dir), model_key(data_dir, model), method, k, digest, layouts_json(layouts), feedback)


@st.cache_data(max_entries=16, show_spinner="Estimating the current settings' page from the logged traffic…")
def _offpolicy(dkey: str, mkey: str, method: str, k: int | None, segment_id: str, digest: str, layout_text: str,
               settings_text: str, _feedback) -> dict:
    from engine.page.feedback_report import offpolicy_comparison

    seg = _segment(dkey, mkey, method, k, segment_id)
    return offpolicy_comparison(_studio(dkey, mkey), _feedback, _layouts(layout_text)[0], _settings(settings_text), segment=seg)


def offpolicy(data_dir: str, model: str, segment_id: str, digest: str, feedback, logged_layout, settings,
              method: str = "kmeans", k: int | None = None) -> dict:
    """``engine.page.feedback_report.offpolicy_comparison`` of the settings' page against the logged layout."""
    return _offpolicy(data_key(data_dir), model_key(data_dir, model), method, k, segment_id, digest, layouts_json([logged_layout]),
                      settings_json(settings), feedback)
