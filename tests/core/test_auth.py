"""Users file, cookie key handling, re-login cookies, the login throttle and the user CLI."""

from __future__ import annotations

import io
import stat
import warnings
from pathlib import Path

import jwt
import pytest
import yaml

from insights_core import auth
from insights_core.errors import ConfigError
from tests.helpers import make_settings

KEY = "k" * 40


def _config(tmp_path: Path, **users: tuple[str, int]) -> auth.AuthConfig:
    """users: name -> (role, bcrypt rounds) with password 'correct horse'."""
    return auth.AuthConfig(
        {
            name: auth.User(
                name, name.title(), f"{name}@x.test", (role,), auth.hash_password("correct horse", rounds=rounds)
            )
            for name, (role, rounds) in users.items()
        }
    )


def test_stub_mode_writes_demo_users_with_hashed_demo_password(tmp_path: Path) -> None:
    path = tmp_path / "auth.yaml"
    assert auth.ensure_demo_auth_config(path) is True
    assert auth.ensure_demo_auth_config(path) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "demo" not in yaml.safe_load(text)["credentials"]["usernames"]["admin"]["password"]
    config = auth.load_auth_config(path)
    assert sorted(config.users) == ["admin", "analyst", "manager", "viewer"]
    for name, user in config.users.items():
        assert user.role == name
        assert auth.check_password("demo", user.password_hash)
        assert not auth.check_password("wrong", user.password_hash)


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"password": "demo", "roles": ["admin"]}, "not a bcrypt hash"),
        ({"password": auth.hash_password("x", rounds=4), "roles": ["owner"]}, "needs roles"),
        ({"password": auth.hash_password("x", rounds=4), "roles": []}, "needs roles"),
        ({"password": auth.hash_password("x", rounds=4)}, "needs roles"),
    ],
)
def test_users_file_problems_are_one_line_config_errors(details: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        auth.parse_auth_config({"credentials": {"usernames": {"alice": details}}})


def test_bad_user_name_and_missing_sections_are_refused() -> None:
    with pytest.raises(ConfigError, match="may use only"):
        auth.parse_auth_config({"credentials": {"usernames": {"bob smith": {}}}})
    with pytest.raises(ConfigError, match="credentials"):
        auth.parse_auth_config({"users": []})


def test_live_mode_refuses_demo_users_and_weak_hashes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="demo users"):
        auth.check_auth_config_for_mode(auth.demo_auth_config(), "live")
    auth.check_auth_config_for_mode(auth.demo_auth_config(), "stub")
    with pytest.raises(ConfigError, match="alice"):
        auth.check_auth_config_for_mode(_config(tmp_path, alice=("admin", 4)), "live")
    auth.check_auth_config_for_mode(_config(tmp_path, alice=("admin", 10)), "live")
    # a real cost but the public demo password under a demo name is still refused
    renamed = auth.AuthConfig({"admin": auth.User("admin", "A", "", ("admin",), auth.hash_password("demo", rounds=10))})
    with pytest.raises(ConfigError, match="admin"):
        auth.check_auth_config_for_mode(renamed, "live")
    with pytest.raises(ConfigError, match="no users"):
        auth.check_auth_config_for_mode(auth.AuthConfig({}), "stub")


@pytest.mark.parametrize("key", ["some_key", " some_key ", "short-key"])
def test_default_or_short_cookie_key_is_refused_in_any_mode(tmp_path: Path, key: str) -> None:
    for mode in ("stub", "live"):
        settings = make_settings(tmp_path / "data", mode=mode, cookie_key=key)
        with pytest.raises(ConfigError, match="INSIGHTS_COOKIE_KEY"):
            auth.resolve_cookie_key(settings)
    with pytest.raises(ConfigError):
        auth.resolve_cookie_key(make_settings(tmp_path / "data"), secrets_key="some_key")


def test_live_mode_needs_a_cookie_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="live mode needs INSIGHTS_COOKIE_KEY"):
        auth.resolve_cookie_key(make_settings(tmp_path / "data", mode="live"))
    assert not (tmp_path / "data" / auth.COOKIE_KEY_FILE).exists()
    assert auth.resolve_cookie_key(make_settings(tmp_path / "data", mode="live"), secrets_key=KEY) == KEY
    assert auth.resolve_cookie_key(make_settings(tmp_path / "data", mode="live", cookie_key=KEY)) == KEY


def test_stub_mode_generates_a_key_once_and_keeps_it_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    first = auth.resolve_cookie_key(settings)
    assert len(first) >= auth.MIN_COOKIE_KEY_LENGTH and first != auth.LIBRARY_DEFAULT_COOKIE_KEY
    assert auth.resolve_cookie_key(settings) == first
    path = tmp_path / "data" / auth.COOKIE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.resolve_cookie_key(make_settings(tmp_path / "other")) != first
    # a configured key wins over the generated one
    assert auth.resolve_cookie_key(make_settings(tmp_path / "data", cookie_key=KEY)) == KEY


def test_login_cookie_is_accepted_only_when_genuine_current_and_not_revoked(tmp_path: Path) -> None:
    config = _config(tmp_path, alice=("analyst", 4))
    alice_hash = config.users["alice"].password_hash
    now = 1_800_000_000.0
    token, expires = auth.mint_login_cookie("alice", alice_hash, KEY, 7, now)
    assert expires.timestamp() == pytest.approx(now + 7 * 86400)
    assert auth.read_login_cookie(token, KEY, config, {}, now + 60) == "alice"
    assert auth.read_login_cookie(token, KEY, config, {}, now + 8 * 86400) is None  # expired
    assert auth.read_login_cookie(token, "x" * 40, config, {}, now + 60) is None  # other key
    assert auth.read_login_cookie(token, KEY, auth.AuthConfig({}), {}, now + 60) is None  # user removed
    assert auth.read_login_cookie(token, KEY, config, {"alice": now + 30}, now + 60) is None  # logged out after
    assert auth.read_login_cookie(token, KEY, config, {"alice": now - 30}, now + 60) == "alice"
    assert auth.read_login_cookie(token, KEY, config, {}, now - 3600) is None  # issued in the future


def test_a_new_password_or_a_re_created_user_voids_earlier_cookies(tmp_path: Path) -> None:
    config = _config(tmp_path, alice=("analyst", 4))
    now = 1_800_000_000.0
    token, _ = auth.mint_login_cookie("alice", config.users["alice"].password_hash, KEY, 7, now)
    re_created = _config(tmp_path, alice=("analyst", 4))  # same name, same password: a new salt
    assert auth.read_login_cookie(token, KEY, re_created, {}, now + 60) is None
    fingerprint = auth.password_fingerprint(config.users["alice"].password_hash, KEY)
    assert fingerprint != auth.password_fingerprint(re_created.users["alice"].password_hash, KEY)
    assert config.users["alice"].password_hash[7:] not in token  # the cookie carries no part of the hash


def test_forged_and_library_made_cookies_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, admin=("admin", 4))
    now = 1_800_000_000.0
    fingerprint = auth.password_fingerprint(config.users["admin"].password_hash, KEY)
    claims = {"username": "admin", "exp_date": now + 86400, "iat": now, "pwd": fingerprint}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's default key is short, which is the point
        forged = jwt.encode(claims, auth.LIBRARY_DEFAULT_COOKIE_KEY, algorithm="HS256")
    assert auth.read_login_cookie(forged, KEY, config, {}, now) is None
    no_iat = jwt.encode({"username": "admin", "exp_date": now + 86400, "pwd": fingerprint}, KEY, algorithm="HS256")
    assert auth.read_login_cookie(no_iat, KEY, config, {}, now) is None
    no_fingerprint = jwt.encode({"username": "admin", "exp_date": now + 86400, "iat": now}, KEY, algorithm="HS256")
    assert auth.read_login_cookie(no_fingerprint, KEY, config, {}, now) is None  # as minted before fingerprints
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert auth.read_login_cookie(unsigned, KEY, config, {}, now) is None
    assert auth.read_login_cookie("not a jwt", KEY, config, {}, now) is None
    device, _ = auth.mint_device_cookie("admin", KEY, now)
    assert auth.read_login_cookie(device, KEY, config, {}, now) is None  # a device cookie is no login
    genuine = jwt.encode(claims, KEY, algorithm="HS256")
    assert auth.read_login_cookie(genuine, KEY, config, {}, now) == "admin"
    assert auth.read_device_cookie(genuine, KEY, "admin", now) is None  # nor a login cookie a device


def test_device_cookie_names_one_user_and_expires(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    token, expires = auth.mint_device_cookie("alice", KEY, now)
    device = auth.read_device_cookie(token, KEY, "alice", now + 60)
    assert device and len(device) == 16
    assert auth.mint_device_cookie("alice", KEY, now)[0] != token  # each login a new device id
    assert auth.read_device_cookie(token, KEY, "bob", now + 60) is None
    assert auth.read_device_cookie(token, "x" * 40, "alice", now + 60) is None
    assert auth.read_device_cookie(token, KEY, "alice", expires.timestamp() + 1) is None
    assert auth.read_device_cookie(None, KEY, "alice", now) is None


def test_logouts_are_kept_in_the_data_dir(tmp_path: Path) -> None:
    assert auth.fetch_logouts(tmp_path) == {}
    auth.save_logout(tmp_path, "Alice", 100.0)
    auth.save_logout(tmp_path, "bob", 200.0)
    assert auth.fetch_logouts(tmp_path) == {"alice": 100.0, "bob": 200.0}
    assert stat.S_IMODE((tmp_path / auth.LOGOUTS_FILE).stat().st_mode) == 0o600
    (tmp_path / auth.LOGOUTS_FILE).write_text("not json")
    assert auth.fetch_logouts(tmp_path) == {}


def test_lockout_counts_are_kept_in_a_private_file(tmp_path: Path) -> None:
    """The throttle's rules are tested on both stores in test_auth_state.py; this is the file's own part."""
    auth.LoginThrottle(tmp_path, max_attempts=3, lockout_seconds=600).record_failure("alice", None, 0)
    assert stat.S_IMODE((tmp_path / auth.LOCKOUTS_FILE).stat().st_mode) == 0o600


def test_verify_login_does_one_bcrypt_check_for_known_and_unknown_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, alice=("analyst", 4), bob=("viewer", 5))
    assert auth.bcrypt_cost(auth.dummy_hash_for(config)) == 5  # as dear as the dearest real hash
    calls = []
    real = auth.bcrypt.checkpw
    monkeypatch.setattr(auth.bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    assert auth.verify_login(config, "alice", "correct horse") == config.users["alice"]
    assert auth.verify_login(config, "alice", "wrong") is None
    assert auth.verify_login(config, "mallory", "correct horse") is None
    assert len(calls) == 3


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], path: Path, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = auth.main(["--config", str(path), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_adds_lists_changes_and_removes_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "auth.yaml"
    code, _, err = _cli(
        monkeypatch,
        capsys,
        path,
        "add-user",
        "Alice",
        "--role",
        "analyst",
        "--name",
        "Alice Smith",
        "--password-stdin",
        stdin="correct horse\n",
    )
    assert code == 0, err
    user = auth.load_auth_config(path).users["alice"]
    assert user.roles == ("analyst",) and user.name == "Alice Smith"
    assert auth.check_password("correct horse", user.password_hash)
    assert auth.bcrypt_cost(user.password_hash) >= auth.LIVE_MIN_BCRYPT_COST
    assert "correct horse" not in path.read_text()

    code, out, _ = _cli(monkeypatch, capsys, path, "list-users")
    assert code == 0 and out.startswith("alice\tanalyst\tAlice Smith")
    assert "$2" not in out

    code, _, err = _cli(
        monkeypatch, capsys, path, "add-user", "alice", "--role", "admin", "--password-stdin", stdin="another one\n"
    )
    assert code == 2 and "exists" in err
    code, _, _ = _cli(monkeypatch, capsys, path, "set-password", "alice", "--password-stdin", stdin="another one\n")
    assert code == 0
    assert auth.check_password("another one", auth.load_auth_config(path).users["alice"].password_hash)
    code, _, _ = _cli(monkeypatch, capsys, path, "remove-user", "alice")
    assert code == 0 and auth.load_auth_config(path).users == {}
    code, _, err = _cli(monkeypatch, capsys, path, "remove-user", "alice")
    assert code == 2 and "no user alice" in err


@pytest.mark.parametrize(
    ("password", "message"),
    [("demo", "at least"), ("Demo    ", "public"), ("short", "at least"), (" padded password", "spaces")],
)
def test_cli_refuses_weak_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], password: str, message: str
) -> None:
    path = tmp_path / "auth.yaml"
    code, _, err = _cli(
        monkeypatch, capsys, path, "add-user", "bob", "--role", "viewer", "--password-stdin", stdin=password + "\n"
    )
    assert code == 2 and message in err
    assert not path.exists()


def test_cli_prints_a_usable_cookie_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert auth.main(["new-cookie-key"]) == 0
    key = capsys.readouterr().out.strip()
    assert auth.validate_cookie_key(key) == key


def test_cli_refuses_a_password_over_72_bytes_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "auth.yaml"
    long = "é" * 37  # 37 characters, 74 bytes: bcrypt would ignore (or refuse) the end
    code, out, err = _cli(
        monkeypatch, capsys, path, "add-user", "bob", "--role", "viewer", "--password-stdin", stdin=long + "\n"
    )
    assert code == 2 and err.count("\n") == 1 and "72 bytes" in err
    assert not path.exists()
    assert (
        _cli(
            monkeypatch,
            capsys,
            path,
            "add-user",
            "bob",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="correct horse\n",
        )[0]
        == 0
    )
    code, _, err = _cli(monkeypatch, capsys, path, "set-password", "bob", "--password-stdin", stdin=long + "\n")
    assert code == 2 and "72 bytes" in err


def test_cli_reports_an_unwritable_users_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    path = tmp_path / "not-a-dir" / "auth.yaml"  # its folder is a file: nothing can be written there, even by root
    code, _, err = _cli(
        monkeypatch, capsys, path, "add-user", "bob", "--role", "viewer", "--password-stdin", stdin="correct horse\n"
    )
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err and str(path) in err


@pytest.mark.parametrize("case", ["long password", "unwritable file"])
def test_the_auth_command_never_prints_a_traceback(tmp_path: Path, case: str) -> None:
    import subprocess

    from tests.helpers import PYTHON, ROOT, subprocess_env

    (tmp_path / "file").write_text("")
    path = tmp_path / ("file" if case == "unwritable file" else "ok") / "auth.yaml"
    password = "x" * 73 if case == "long password" else "correct horse"
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "insights_core.auth",
            "--config",
            str(path),
            "add-user",
            "bob",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=subprocess_env(tmp_path / "data"),
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("auth: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
