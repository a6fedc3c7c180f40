"""API tokens: stored hashed and private, managed with the CLI, acting with the user's current role;
revocation, removal, a role change or a new password apply to the very next request; no token or
hash reaches a log."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from insights_core.api_tokens import TOKENS_FILE, TokenStore, hash_token, looks_like_token
from insights_core.auth import AuthConfig, User, hash_password, load_auth_config, save_auth_config
from insights_core.settings import Settings
from tests.api.helpers import PREFIX, TestClient, api_client, bearer, build_api_data_dir, issue_token
from tests.dashboard.app_harness import CAMPAIGN
from tests.helpers import PYTHON, ROOT, subprocess_env


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_api_data_dir(tmp_path_factory.mktemp("tokens") / "data")


@pytest.fixture
def fresh(tmp_path: Path, synced: Settings) -> Iterator[tuple[Settings, TestClient]]:
    """The synced store with a users file and token file of this test's own (the snapshot is shared)."""
    settings = synced.model_copy(update={"auth_config": tmp_path / "auth.yaml"})
    save_auth_config(load_auth_config(synced.auth_config_path), settings.auth_config_path)
    (synced.data_dir / TOKENS_FILE).unlink(missing_ok=True)
    with api_client(settings) as client:
        yield settings, client


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(settings.data_dir, INSIGHTS_AUTH_CONFIG=str(settings.auth_config_path))
    return subprocess.run(
        [PYTHON, "-m", "insights_core.auth", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def _set_user(settings: Settings, username: str, role: str | None, new_password: bool = False) -> None:
    """Change one user in the users file as the CLI does (None: remove them)."""
    config = load_auth_config(settings.auth_config_path)
    users = dict(config.users)
    if role is None:
        users.pop(username)
    else:
        user = users[username]
        users[username] = User(
            user.username,
            user.name,
            user.email,
            (role,),
            hash_password("another-pass-1", rounds=4) if new_password else user.password_hash,
        )
    save_auth_config(AuthConfig(users), settings.auth_config_path)


def test_the_file_keeps_hashes_only_and_is_private(fresh: tuple[Settings, TestClient]) -> None:
    settings, _ = fresh
    token_id, token = issue_token(settings, "analyst")
    path = settings.data_dir / TOKENS_FILE
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in text and token[3:] not in text and hash_token(token) in text
    assert looks_like_token(token) and len(token) == 46 and token.startswith("mi_")
    (record,) = TokenStore(settings.data_dir).fetch_tokens()
    assert (record.id, record.username) == (token_id, "analyst") and record.hint == f"mi_{token[3:5]}…{token[-4:]}"
    assert TokenStore(settings.data_dir).find_token(token) == record
    assert TokenStore(settings.data_dir).find_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


def test_cli_new_list_and_revoke(fresh: tuple[Settings, TestClient]) -> None:
    settings, client = fresh
    created = _cli(settings, "new-token", "manager")
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert looks_like_token(token) and created.stdout.count(token) == 1
    assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 200
    listed = _cli(settings, "list-tokens")
    (line,) = listed.stdout.splitlines()
    token_id, username, hint, created_at, state = line.split("\t")
    assert username == "manager" and state == "manager" and hint.endswith(token[-4:]) and token not in listed.stdout
    assert hash_token(token) not in listed.stdout and created_at.startswith("20")
    revoked = _cli(settings, "revoke-token", token_id)
    assert revoked.returncode == 0 and f"{token_id} of manager revoked" in revoked.stdout
    assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 401
    assert _cli(settings, "list-tokens").stdout == ""


@pytest.mark.parametrize(
    "args, words",
    [
        (("new-token", "nobody"), "no user nobody"),
        (("revoke-token", "tok_000000000000"), "no API token tok_000000000000"),
    ],
)
def test_cli_refuses_with_one_line(fresh: tuple[Settings, TestClient], args: tuple[str, ...], words: str) -> None:
    result = _cli(fresh[0], *args)
    assert result.returncode == 2 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_revoked_token_is_refused_at_once(fresh: tuple[Settings, TestClient]) -> None:
    settings, client = fresh
    token_id, token = issue_token(settings, "admin")
    _, other = issue_token(settings, "admin")
    assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 200
    assert TokenStore(settings.data_dir).revoke_token(token_id) is not None
    answer = client.get(f"{PREFIX}/overview", headers=bearer(token))
    assert answer.status_code == 401 and answer.json() == {"error": "invalid or revoked API token"}
    assert client.get(f"{PREFIX}/overview", headers=bearer(other)).status_code == 200  # only that one


def test_the_users_current_role_applies_at_once(fresh: tuple[Settings, TestClient]) -> None:
    settings, client = fresh
    _, token = issue_token(settings, "analyst")
    body = {"days_back": 1, "entity_type": "campaign", "entity_ids": [CAMPAIGN]}
    assert client.post(f"{PREFIX}/sync-now", json=body, headers=bearer(token)).status_code == 403
    _set_user(settings, "analyst", "manager")
    assert client.post(f"{PREFIX}/sync-now", json=body, headers=bearer(token)).status_code == 202
    _set_user(settings, "analyst", "viewer")
    assert client.post(f"{PREFIX}/sync-now", json=body, headers=bearer(token)).status_code == 403
    assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("change", ["remove", "new password", "re-created"])
def test_a_removed_user_or_new_password_voids_the_token(fresh: tuple[Settings, TestClient], change: str) -> None:
    settings, client = fresh
    _, token = issue_token(settings, "manager")
    assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 200
    if change == "remove":
        _set_user(settings, "manager", None)
    elif change == "new password":
        _set_user(settings, "manager", "manager", new_password=True)
    else:  # removed, then a different person added under the same name
        _set_user(settings, "manager", None)
        config = load_auth_config(settings.auth_config_path)
        save_auth_config(
            AuthConfig(
                {
                    **config.users,
                    "manager": User("manager", "New Manager", "", ("admin",), hash_password("new-person-1", rounds=4)),
                }
            ),
            settings.auth_config_path,
        )
    answer = client.get(f"{PREFIX}/overview", headers=bearer(token))
    assert answer.status_code == 401 and "create a new token" in answer.json()["error"]
    listed = _cli(settings, "list-tokens").stdout
    assert "void:" in listed


def test_a_broken_users_file_is_503_not_a_pass(fresh: tuple[Settings, TestClient]) -> None:
    settings, client = fresh
    _, token = issue_token(settings, "viewer")
    settings.auth_config_path.write_text("credentials: [not, a, mapping")
    answer = client.get(f"{PREFIX}/overview", headers=bearer(token))
    assert answer.status_code == 503 and "users file" in answer.json()["error"]


def test_live_mode_refuses_demo_users_tokens(fresh: tuple[Settings, TestClient]) -> None:
    settings, _ = fresh
    _, token = issue_token(settings, "admin")
    live = settings.model_copy(update={"mode": "live"})
    with api_client(live) as client:
        answer = client.get(f"{PREFIX}/overview", headers=bearer(token))
    assert answer.status_code == 503 and "live mode refuses demo users" in answer.json()["error"]


def test_no_token_or_hash_in_any_log(fresh: tuple[Settings, TestClient], caplog: pytest.LogCaptureFixture) -> None:
    settings, client = fresh
    caplog.set_level(logging.DEBUG)
    created = _cli(settings, "new-token", "admin")
    token = created.stdout.splitlines()[-1]
    revoked_id, revoked = issue_token(settings, "manager")
    TokenStore(settings.data_dir).revoke_token(revoked_id)
    for headers in (bearer(token), bearer(revoked), bearer(token[:-2]), {"Authorization": token}):
        client.get(f"{PREFIX}/overview", headers=headers)
        client.get(f"{PREFIX}/campaign/abc", headers=headers)
        client.post(f"{PREFIX}/sync-now", json={"days_back": 1}, headers=headers)
    client.post(f"{PREFIX}/sync-now", content=b"{not json", headers=bearer(token))
    secrets = [token, token[3:], revoked, hash_token(token), hash_token(revoked)]
    logged = (
        caplog.text
        + created.stderr
        + "".join(p.read_text(errors="replace") for p in settings.data_dir.rglob("*.log*") if p.is_file())
    )
    assert "sync request" in caplog.text  # the API did log (the queued sync-now)
    assert not [s for s in secrets if s in logged]
    payloads = json.dumps([r.getMessage() for r in caplog.records])
    assert not [s for s in secrets if s in payloads]
