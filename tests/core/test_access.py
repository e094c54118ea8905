"""engine.core.access: password hashes, loopback addresses and which login is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.access import hash_password, is_loopback, login_kind, oidc_configured, verify_password


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored) and not verify_password("", stored)
    assert not verify_password("x" * 5000, stored)  # refused before hashing
    assert hash_password("a", iterations=1000) != hash_password("a", iterations=1000)  # salted


@pytest.mark.parametrize("stored", ["", "plain", "pbkdf2_sha256$x$y$z", "md5$1$AA==$AA==", "pbkdf2_sha256$10$!!$AA=="])
def test_a_malformed_hash_never_verifies(stored: str) -> None:
    assert verify_password("anything", stored) is False


@pytest.mark.parametrize("address, local", [("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("", False), ("192.168.1.4", False),
                                            ("example.org", False)])
def test_loopback(address: str, local: bool) -> None:
    assert is_loopback(address) is local


def test_login_kind(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    assert login_kind({}, secrets) is None
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "x"\n')
    assert oidc_configured(secrets) and login_kind({}, secrets) == "oidc"
    assert login_kind({"HOMEPAGE_PASSWORD_HASH": hash_password("p", iterations=1000)}, secrets) == "password"
    with pytest.raises(ValueError, match="HOMEPAGE_PASSWORD_HASH"):
        login_kind({"HOMEPAGE_PASSWORD_HASH": "hunter2"}, secrets)
    secrets.write_text("[auth\nbroken")
    assert login_kind({}, secrets) is None


def test_data_roots_bound_what_the_app_may_open(tmp_path: Path) -> None:
    from engine.core.access import data_roots, max_train_minutes, within_roots

    default = tmp_path / "shop" / "demo"
    roots = data_roots(default, {})
    assert roots == [(tmp_path / "shop").resolve()]
    assert within_roots(tmp_path / "shop" / "other", roots) and not within_roots(tmp_path / "elsewhere", roots)
    assert not within_roots(tmp_path / "shop" / ".." / "elsewhere", roots)  # no way out through ..
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "link").symlink_to(tmp_path)
    assert not within_roots(tmp_path / "shop" / "link" / "elsewhere", roots)  # nor through a link
    extra = data_roots(default, {"HOMEPAGE_DATA_ROOTS": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})
    assert extra == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    assert max_train_minutes({}) == 30 and max_train_minutes({"HOMEPAGE_MAX_TRAIN_MINUTES": "240"}) == 240
    assert max_train_minutes({"HOMEPAGE_MAX_TRAIN_MINUTES": "lots"}) == 30 and max_train_minutes({"HOMEPAGE_MAX_TRAIN_MINUTES": "nan"}) == 30


def test_the_app_config_keeps_the_server_private_and_quiet() -> None:
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"  # `streamlit run` from the project stays on this machine too
    assert config["client"]["showErrorDetails"] == "none"  # no traceback or server path in the browser
    assert config["server"]["maxUploadSize"] <= 200
