"""Import MovieLens 100K (ratings, movie titles and genres, user demographics) into a data directory."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from engine.core.errors import DataError
from engine.data.importers._common import require_file
from engine.data.tables import write_dataset

# u.item: id | title | release date | video release date | IMDb URL | 19 genre flags.
_ITEM_FIXED = ("item_id", "title", "release_date", "video_release_date", "imdb_url")
_DEFAULT_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


def _read_pipe(path: Path, names: list[str] | None = None) -> pd.DataFrame:
    # The files are latin-1 and titles may hold quote characters, so no CSV quoting.
    return pd.read_csv(
        path, sep="|", header=None, names=names, dtype=str, keep_default_na=False,
        encoding="latin-1", quoting=csv.QUOTE_NONE,
    )


def _genres(src: Path) -> list[str]:
    """Genre names by flag position, from u.genre when present."""
    path = src / "u.genre"
    if not path.is_file():
        return list(_DEFAULT_GENRES)
    table = _read_pipe(path, ["name", "index"])
    table = table.loc[table["name"] != ""]
    return table.sort_values("index", key=lambda s: s.astype(int))["name"].tolist()


def import_movielens(src: str | Path, out: str | Path, min_rating: float = 0, fmt: str = "csv") -> Path:
    """Import the MovieLens 100K folder into a data directory.

    Items: every movie of u.item; title as given (``Toy Story (1995)``), category = the movie's first
    genre in u.genre order (``unknown`` for the two movies flagged only so), genres = all its genres
    joined by ``|``, created_at = release date (ISO date, empty where missing), imdb_url.
    Interactions: u.data rows with rating >= ``min_rating``, timestamp = unix seconds, weight = rating,
    written in time order (ties in file order). Users: u.user (age, gender, occupation, zip) of the
    users left in the interactions.

    Args:
        src: the ml-100k folder (u.data, u.item, u.genre, u.user).
        out: the data directory to write.
        min_rating: keep only ratings at or above this (0 keeps all; 4 keeps "liked" movies).
        fmt: ``csv`` (default) or ``parquet``.

    Returns:
        The output directory.

    Raises:
        DataError: missing files, malformed rows, no rating left, or an output that does not load.
    """
    src = Path(src)
    if not src.is_dir():
        raise DataError(f"{src}: not a folder (expected the MovieLens 100K folder with u.data)")
    data_path = require_file(src / "u.data", "MovieLens u.data")
    ratings = pd.read_csv(data_path, sep="\t", header=None, names=["user_id", "item_id", "rating", "unixtime"], dtype=str)
    numeric = ratings[["rating", "unixtime"]].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna().any(axis=1).to_numpy()
    if bad.any():
        raise DataError(f"{data_path}: {int(bad.sum())} row(s) without a numeric rating and unix time, first at line {int(bad.argmax()) + 1}")
    ratings = ratings.assign(rating=numeric["rating"].astype(float), unixtime=numeric["unixtime"].astype("int64"))
    ratings = ratings.loc[ratings["rating"] >= min_rating]
    if ratings.empty:
        raise DataError(f"{data_path}: no rating is >= min_rating={min_rating}")
    ratings = ratings.sort_values("unixtime", kind="stable")

    item_path = require_file(src / "u.item", "MovieLens u.item")
    genres = _genres(src)
    movies = _read_pipe(item_path)
    if movies.shape[1] != len(_ITEM_FIXED) + len(genres):
        raise DataError(f"{item_path}: expected {len(_ITEM_FIXED) + len(genres)} '|'-separated fields per line, found {movies.shape[1]}")
    movies.columns = [*_ITEM_FIXED, *genres]
    flags = movies[genres] == "1"
    genre_lists = [[g for g, on in zip(genres, row) if on] for row in flags.itertuples(index=False)]
    released = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce")
    items = pd.DataFrame(
        {
            "item_id": movies["item_id"],
            "title": movies["title"],
            "category": [g[0] if g else "" for g in genre_lists],
            "genres": ["|".join(g) for g in genre_lists],
            "created_at": released.dt.strftime("%Y-%m-%d"),
            "imdb_url": movies["imdb_url"],
        }
    )

    interactions = pd.DataFrame(
        {
            "user_id": ratings["user_id"],
            "item_id": ratings["item_id"],
            "timestamp": ratings["unixtime"],
            "weight": ratings["rating"],
        }
    ).reset_index(drop=True)

    users = None
    user_path = src / "u.user"
    if user_path.is_file():
        users = _read_pipe(user_path, ["user_id", "age", "gender", "occupation", "zip"])
        users = users.loc[users["user_id"].isin(pd.unique(interactions["user_id"]))].reset_index(drop=True)
        users["age"] = pd.to_numeric(users["age"], errors="coerce")

    readme = (
        "# MovieLens 100K\n\n"
        f"Imported from `{src}` (GroupLens; research use under the terms in its README).\n\n"
        f"- ratings >= {min_rating}; weight = rating (1-5), timestamp = the rating's unix time.\n"
        "- category = first genre; genres = all genres joined by `|`; created_at = release date.\n"
    )
    return write_dataset(out, items, interactions, users, fmt=fmt, extra_files={"README.md": readme})
