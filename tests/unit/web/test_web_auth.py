"""The token file and the checks of web/auth.py, on plain values."""

from __future__ import annotations

import os
import stat

import pytest

from xqute.errors import ConfigError
from xqute.web.auth import Auth, ensure_token, read_token


def test_token_file_is_created_user_only_and_reused(tmp_path):
    path = tmp_path / "sub" / "queue.token"
    token = ensure_token(path)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(path) == token  # a restart keeps it
    assert read_token(tmp_path / "missing") is None


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "t"
    path.write_text("secret\n")
    os.chmod(path, 0o644)
    with pytest.raises(
        ConfigError, match=r"readable by others \(mode 0644\); run: chmod"
    ):
        read_token(path)


def test_a_symlinked_token_file_is_refused(tmp_path):
    real = tmp_path / "real"
    real.write_text("secret\n")
    os.chmod(real, 0o600)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ConfigError, match="cannot read the token file"):
        read_token(tmp_path / "link")


@pytest.mark.parametrize(
    "host,loopback,ok",
    [
        ("127.0.0.1:8765", True, True),
        ("localhost:8765", True, True),
        ("[::1]:8765", True, True),
        ("LOCALHOST", True, True),
        ("evil.example:8765", True, False),  # DNS rebinding
        ("127.0.0.1.evil.example", True, False),
        (None, True, False),
        ("evil.example", False, True),  # not loopback: the token guards everything
    ],
)
def test_host_check(host, loopback, ok):
    assert Auth("t", loopback).host_ok(host) is ok


def test_bearer_session_and_csrf_values():
    auth = Auth("s3cret", True)
    assert auth.bearer_ok("Bearer s3cret") and auth.bearer_ok("bearer  s3cret")
    for bad in (None, "", "Bearer", "Bearer s3cre", "Basic s3cret", "s3cret"):
        assert not auth.bearer_ok(bad)
    # the cookie and the CSRF token are derived, different, and not the token
    assert auth.session != auth.csrf and "s3cret" not in (auth.session + auth.csrf)
    assert auth.session_ok(auth.session) and not auth.session_ok(auth.csrf)
    assert auth.csrf_ok(auth.csrf) and not auth.csrf_ok(None)
    assert Auth("other", True).session != auth.session
