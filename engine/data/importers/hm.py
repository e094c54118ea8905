"""Import the H&M Personalized Fashion data (articles, purchases, customers, photos) into a data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from engine.core.errors import DataError
from engine.data.importers._common import require_file
from engine.data.tables import write_dataset

TRANSACTION_FILES = {
    "histories": ("transactions_histories.csv",),
    "last_week": ("transactions_last_week.csv",),
    "both": ("transactions_histories.csv", "transactions_last_week.csv"),
}
CHANNELS = {1: "store", 2: "online"}
# Catalogue columns kept as extra item attributes beside the standard ones.
ATTRIBUTE_COLS = (
    "product_code",
    "product_group_name",
    "graphical_appearance_name",
    "department_name",
    "index_name",
    "index_group_name",
    "section_name",
    "garment_group_name",
)
# (label, column) pairs composed into the readable description after detail_desc.
DESCRIPTION_PARTS = (
    ("type", "product_type_name"),
    ("product group", "product_group_name"),
    ("appearance", "graphical_appearance_name"),
    ("colour", "colour_group_name"),
    ("department", "department_name"),
    ("section", "section_name"),
    ("index", "index_name"),
    ("garment group", "garment_group_name"),
)
# Placeholder values that carry no information in a description.
_UNINFORMATIVE = {"", "unknown", "undefined"}
# Rows of one day are equal purchases when these match; price is left out on purpose (see import_hm).
_PURCHASE_KEY = ["t_dat", "customer_id", "article_id", "sales_channel_id"]


def _read_transactions(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        dtype={"t_dat": str, "customer_id": str, "article_id": str, "price": float, "sales_channel_id": "Int64"},
    )
    missing = [c for c in ("t_dat", "customer_id", "article_id", "price", "sales_channel_id") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    bad = ~frame["sales_channel_id"].isin(list(CHANNELS)).to_numpy(dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0]) + 2
        raise DataError(f"{path}: column sales_channel_id must be 1 (store) or 2 (online); {int(bad.sum())} row(s) are not, first at file line {first}")
    return frame


def _drop_overlap(histories: pd.DataFrame, last_week: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop the last-week rows that repeat a histories row, counting repeats so real re-buys survive."""
    # The n-th occurrence of a purchase key in one file matches only the n-th in the other, so a
    # customer who bought an article twice that day in both files loses both copies from last week
    # but keeps the two in histories; genuine within-file duplicates (quantity > 1) are kept.
    def keyed(frame: pd.DataFrame) -> pd.MultiIndex:
        occurrence = frame.groupby(_PURCHASE_KEY, sort=False).cumcount()
        return pd.MultiIndex.from_frame(frame[_PURCHASE_KEY].assign(_n=occurrence.to_numpy()))

    repeated = keyed(last_week).isin(keyed(histories))
    return last_week.loc[~repeated], int(repeated.sum())


def _describe(articles: pd.DataFrame) -> list[str]:
    texts = []
    columns = [articles[c].tolist() for _, c in DESCRIPTION_PARTS]
    for i, detail in enumerate(articles["detail_desc"].tolist()):
        detail = detail.strip()
        if detail and detail[-1] not in ".!?":
            detail += "."
        facts = [f"{label}: {col[i]}" for (label, _), col in zip(DESCRIPTION_PARTS, columns) if col[i].strip().lower() not in _UNINFORMATIVE]
        facts_text = ("; ".join(facts) + ".") if facts else ""
        texts.append(" ".join(t for t in (detail, facts_text[:1].upper() + facts_text[1:]) if t))
    return texts


def _photos(image_dir: Path) -> set[str]:
    """Article ids that have a photo, from one directory listing per 3-digit folder."""
    found: set[str] = set()
    if not image_dir.is_dir():
        return found
    for sub in os.scandir(image_dir):
        if sub.is_dir():
            found.update(e.name[:-4] for e in os.scandir(sub.path) if e.name.endswith(".jpg") and e.is_file())
    return found


def import_hm(
    src: str | Path,
    out: str | Path,
    *,
    transactions: str = "histories",
    images: bool = True,
    fmt: str = "parquet",
) -> Path:
    """Import the H&M Personalized Fashion data set into a data directory.

    Items are the catalogue rows of the articles that appear in the chosen transactions:
    item_id = article_id (10-digit string, leading zero kept), title = prod_name,
    category = product_type_name, color = colour_group_name, brand = index_group_name (the five
    H&M lines: Ladieswear, Divided, Menswear, Baby/Children, Sport; section_name stays as its own
    column), price = mean transaction price of the article in the imported rows, description =
    detail_desc followed by the type, group, appearance, colour, department, section, index and
    garment group as readable text ("Unknown" values left out), image = ``images/<article_id>.jpg``
    where a photo exists (else empty). product_code and the ``*_name`` attribute columns are kept.

    Interactions: user_id = customer_id, item_id = article_id, timestamp = t_dat (day resolution;
    rows are passed in file order so the loader's stable sort keeps the order within a day),
    event = "purchase", channel = "store"/"online" (sales_channel_id 1/2), price.
    Users: customers.csv rows of the customers present in the transactions (age, club_member_status,
    fashion_news_frequency, fn and active as 0/1, postal_code); no users file if customers.csv is absent.

    With ``transactions="both"`` the histories rows come first, then the last-week rows minus those
    that repeat a histories row. The two files share 219 rows (65 customers); they are not byte-equal,
    because the last-week file stores prices rounded through float32 (0.0254067796610169 vs
    0.02540677972137928), so rows are matched on date, customer, article and channel, each
    occurrence of such a key matching one occurrence in the other file. Same-day repeat purchases
    within a file (quantity > 1) are kept.

    Args:
        src: folder with articles.csv, transactions_histories.csv, transactions_last_week.csv,
            customers.csv and images/<first 3 digits>/<article_id>.jpg.
        out: the data directory to write.
        transactions: ``histories`` (31,662 purchases, complete histories of 1,364 customers),
            ``last_week`` (240,311 purchases of 2020-09-16 .. 22) or ``both``.
        images: link (or copy) the photos of the kept items into ``out/images``.
        fmt: ``parquet`` (default, keeps types) or ``csv``.

    Returns:
        The output directory.

    Raises:
        DataError: missing input files or columns, unknown articles or channels, or an output that
            does not load.
    """
    src = Path(src)
    if transactions not in TRANSACTION_FILES:
        raise ValueError(f"transactions must be one of {', '.join(TRANSACTION_FILES)}, got {transactions!r}")
    if not src.is_dir():
        raise DataError(f"{src}: not a folder (expected the H&M folder with articles.csv)")
    frames = [_read_transactions(require_file(src / name, "H&M transactions file")) for name in TRANSACTION_FILES[transactions]]
    readme_note = ""
    if len(frames) == 2:
        kept, dropped = _drop_overlap(frames[0], frames[1])
        frames[1] = kept
        readme_note = f"\nThe {dropped} last-week rows that repeat histories rows were dropped (matched on date, customer, article, channel).\n"
    tx = pd.concat(frames, ignore_index=True)
    if tx.empty:
        raise DataError(f"{src}: the chosen transactions file(s) have no rows")

    articles_path = require_file(src / "articles.csv", "H&M articles.csv")
    articles = pd.read_csv(articles_path, dtype=str, keep_default_na=False)
    needed = ("article_id", "prod_name", "product_type_name", "colour_group_name", "detail_desc", *(c for _, c in DESCRIPTION_PARTS), *ATTRIBUTE_COLS)
    missing = sorted({c for c in needed if c not in articles.columns})
    if missing:
        raise DataError(f"{articles_path}: missing column(s) {', '.join(missing)}")
    used = pd.unique(tx["article_id"])
    unknown = ~pd.Index(used).isin(articles["article_id"])
    if unknown.any():
        raise DataError(f"{articles_path}: {int(unknown.sum())} article_id(s) of the transactions are not in the catalogue, e.g. {list(used[unknown][:3])}")
    articles = articles.loc[articles["article_id"].isin(used)].reset_index(drop=True)

    price = tx.groupby("article_id", sort=False)["price"].mean()
    items = pd.DataFrame(
        {
            "item_id": articles["article_id"],
            "title": articles["prod_name"],
            "category": articles["product_type_name"],
            "brand": articles["index_group_name"],
            "color": articles["colour_group_name"],
            "price": articles["article_id"].map(price).astype(float).to_numpy(),
            "description": _describe(articles),
        }
    )
    image_sources: dict[str, Path] = {}
    if images:
        photos = _photos(src / "images")
        has_photo = articles["article_id"].isin(photos).to_numpy()
        items["image"] = np.where(has_photo, "images/" + articles["article_id"] + ".jpg", "")
        image_sources = {f"images/{a}.jpg": src / "images" / a[:3] / f"{a}.jpg" for a in articles["article_id"][has_photo]}
    for column in ATTRIBUTE_COLS:
        items[column] = articles[column].to_numpy()

    interactions = pd.DataFrame(
        {
            "user_id": tx["customer_id"],
            "item_id": tx["article_id"],
            "timestamp": pd.to_datetime(tx["t_dat"], format="%Y-%m-%d"),
            "event": "purchase",
            "channel": tx["sales_channel_id"].map(CHANNELS).astype(str),
            "price": tx["price"].astype(float),
        }
    )

    users = None
    customers_path = src / "customers.csv"
    if customers_path.is_file():
        customers = pd.read_csv(customers_path, dtype={"customer_id": str, "postal_code": str, "club_member_status": str, "fashion_news_frequency": str})
        customers = customers.loc[customers["customer_id"].isin(pd.unique(tx["customer_id"]))]
        users = pd.DataFrame({"user_id": customers["customer_id"]})
        if "age" in customers.columns:
            users["age"] = pd.to_numeric(customers["age"], errors="coerce").astype(float)
        for column in ("club_member_status", "fashion_news_frequency"):
            if column in customers.columns:
                users[column] = customers[column]
        # FN and Active are 1.0 or blank in the source; blank means "no".
        for source, column in (("FN", "fn"), ("Active", "active")):
            if source in customers.columns:
                users[column] = (pd.to_numeric(customers[source], errors="coerce") == 1).astype(np.int8)
        if "postal_code" in customers.columns:
            users["postal_code"] = customers["postal_code"]
        users = users.reset_index(drop=True) if len(users) else None

    readme = (
        "# H&M Personalized Fashion Recommendations\n\n"
        f"Imported from `{src}` (transactions: {transactions}). Source: the H&M Kaggle competition data "
        "(2022; research and non-commercial use under the competition's terms).\n\n"
        "- brand = index_group_name; description = detail_desc plus the article's attributes.\n"
        "- price = mean transaction price of the article in these rows (prices are scaled, not currency).\n"
        "- timestamps have day resolution; purchases of one day keep file order.\n"
        "- items without a photo have an empty image.\n" + readme_note
    )
    return write_dataset(out, items, interactions, users, images=image_sources, fmt=fmt, extra_files={"README.md": readme})
