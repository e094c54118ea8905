"""Who may open the app: loopback by default, and a login (a password hash in the environment, or
Streamlit's OpenID Connect login configured in ``.streamlit/secrets.toml``) before it listens beyond."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path

PASSWORD_HASH_ENV = "HOMEPAGE_PASSWORD_HASH"  # pbkdf2_sha256$<iterations>$<salt>$<hash>, from `homepage hash-password`
DEFAULT_ADDRESS = "127.0.0.1"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
MAX_PASSWORD = 1024  # characters; a longer "password" is refused before hashing


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """PBKDF2-HMAC-SHA256 of ``password`` as ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64)."""
    if not password or len(password) > MAX_PASSWORD:
        raise ValueError(f"a password must have 1 to {MAX_PASSWORD} characters")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string; the digests are compared in
    constant time. A malformed stored hash or an over-long password is a plain ``False``."""
    try:
        scheme, iterations, salt, digest = stored.strip().split("$")
        if scheme != "pbkdf2_sha256" or not password or len(password) > MAX_PASSWORD:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt, validate=True), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``; every other address (0.0.0.0 included) is shared."""
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def oidc_configured(secrets_path: Path) -> bool:
    """Whether ``secrets.toml`` has an ``[auth]`` table with what ``st.login`` needs."""
    try:
        auth = tomllib.loads(secrets_path.read_text()).get("auth", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    return isinstance(auth, dict) and bool(auth.get("redirect_uri")) and bool(auth.get("cookie_secret"))


def login_kind(environ: Mapping[str, str] = os.environ, secrets_path: Path | None = None) -> str | None:
    """``"password"`` (a hash in the environment), ``"oidc"`` (``[auth]`` in secrets.toml) or None."""
    stored = environ.get(PASSWORD_HASH_ENV, "").strip()
    if stored:
        if not stored.startswith("pbkdf2_sha256$") or stored.count("$") != 3:
            raise ValueError(f"{PASSWORD_HASH_ENV} is not a hash from `homepage hash-password`")
        return "password"
    if secrets_path is not None and oidc_configured(secrets_path):
        return "oidc"
    return None


DATA_ROOTS_ENV = "HOMEPAGE_DATA_ROOTS"  # folders (separated by os.pathsep) the app may open, upload into and train in
MAX_TRAIN_MINUTES_ENV = "HOMEPAGE_MAX_TRAIN_MINUTES"
DEFAULT_MAX_TRAIN_MINUTES = 30.0


def data_roots(default_data_dir: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The folders whose data directories the app may open and change: ``$HOMEPAGE_DATA_ROOTS``,
    else the folder holding the app's data directory."""
    text = environ.get(DATA_ROOTS_ENV, "").strip()
    roots = [Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()] if text else [Path(default_data_dir).parent]
    return [r.resolve() for r in roots]


def within_roots(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` (links resolved) lies inside one of ``roots``."""
    resolved = Path(path).expanduser().resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def max_train_minutes(environ: Mapping[str, str] = os.environ) -> float:
    """The longest training run the app may start (``$HOMEPAGE_MAX_TRAIN_MINUTES``, default 30)."""
    try:
        value = float(environ.get(MAX_TRAIN_MINUTES_ENV, DEFAULT_MAX_TRAIN_MINUTES))
    except ValueError:
        return DEFAULT_MAX_TRAIN_MINUTES
    return min(max(value, 0.5), 24 * 60) if not math.isnan(value) else DEFAULT_MAX_TRAIN_MINUTES
