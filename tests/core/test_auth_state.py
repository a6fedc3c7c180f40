"""The login state behaves the same in the data dir's files and in PostgreSQL (INSIGHTS_STORE=ducklake):
users and demo seeding, logouts, lockout counts, API tokens (hashes only) and the generated cookie key.
Two `AuthState`s on one deployment are two processes (or, with PostgreSQL, two replicas)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from insights_core import auth
from insights_core.api_tokens import hash_token, looks_like_token
from insights_core.auth_state import AuthState, auth_state
from insights_core.cluster import auth_state as pg_auth
from insights_core.settings import Settings
from tests.helpers import make_settings

Replica = Callable[[], AuthState]
"""A new AuthState on the test's deployment, as another process would build it."""


@pytest.fixture(params=["files", "postgres"])
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Replica:
    overrides: dict[str, object] = {"login_max_attempts": 3, "login_lockout_minutes": 10}
    if request.param == "postgres":
        url = request.getfixturevalue("catalog_url")
        overrides.update(store="ducklake", catalog_url=url, lake_data_path=str(tmp_path / "lake"))
    settings = make_settings(tmp_path / "data", **overrides)
    return lambda: auth_state(settings)


def _pg_rows(settings_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(settings_url) as con:
        return con.execute(sql).fetchall()  # type: ignore[arg-type]  # test SQL


def _user(name: str, role: str, rounds: int = 4) -> auth.User:
    return auth.User(name, name.title(), f"{name}@x.test", (role,), auth.hash_password("correct horse", rounds=rounds))


def test_demo_users_are_seeded_once_and_users_can_be_changed(replica: Replica) -> None:
    state = replica()
    assert state.users.ensure_demo_users() is True
    assert replica().users.ensure_demo_users() is False
    config = replica().users.fetch_users()
    assert sorted(config.users) == ["admin", "analyst", "manager", "viewer"]
    for name, user in config.users.items():
        assert user.role == name and auth.check_password("demo", user.password_hash)

    alice = _user("alice", "analyst")
    assert state.users.add_user(alice, replace=False) is True
    assert state.users.add_user(_user("alice", "admin"), replace=False) is False
    assert replica().users.fetch_users().users["alice"] == alice
    promoted = auth.User("alice", alice.name, alice.email, ("manager",), alice.password_hash)
    assert state.users.update_user(promoted) is True
    assert replica().users.fetch_users().user("alice").role == "manager"  # type: ignore[union-attr]
    assert state.users.update_user(_user("nobody", "viewer")) is False
    assert state.users.remove_user("alice") is True and state.users.remove_user("alice") is False
    assert "alice" not in replica().users.fetch_users().users
    # removing every user does not bring the demo users back
    for name in list(config.users):
        state.users.remove_user(name)
    assert replica().users.ensure_demo_users() is False
    assert replica().users.fetch_users(missing_ok=True).users == {}


def test_users_added_before_any_seeding_stop_the_demo_users(replica: Replica) -> None:
    state = replica()
    assert state.users.add_user(_user("alice", "admin"), replace=False)
    assert replica().users.ensure_demo_users() is False
    assert sorted(replica().users.fetch_users().users) == ["alice"]


def test_logouts_are_shared(replica: Replica) -> None:
    assert replica().logouts.fetch_logouts() == {}
    replica().logouts.save_logout("Alice", 100.0)
    replica().logouts.save_logout("bob", 200.0)
    assert replica().logouts.fetch_logouts() == {"alice": 100.0, "bob": 200.0}
    replica().logouts.save_logout("alice", 300.0)
    assert replica().logouts.fetch_logouts()["alice"] == 300.0


def test_throttle_locks_a_name_out_after_max_failures_until_the_window_passes(replica: Replica) -> None:
    throttle = replica().throttle
    for second in (0, 10, 20):
        assert throttle.locked_for("alice", None, second) == 0
        throttle.record_failure("Alice", None, second)
    assert throttle.locked_for("alice", None, 21) == pytest.approx(599)
    assert replica().throttle.locked_users(21) == {"alice": pytest.approx(599)}  # another process sees it
    assert throttle.locked_for("bob", None, 21) == 0
    assert throttle.locked_for("alice", None, 621) == 0
    throttle.record_failure("alice", None, 700)
    throttle.record_failure("alice", None, 701)
    assert throttle.locked_for("alice", None, 702) == 0  # the old count expired: two failures only


def test_throttle_counts_trusted_devices_apart_and_unknown_names_alike(replica: Replica) -> None:
    throttle = replica().throttle
    for name in ("alice", "no-such-user"):
        for second in (0, 1, 2):
            throttle.record_failure(name, None, second)
    assert throttle.locked_for("alice", None, 3) == throttle.locked_for("no-such-user", None, 3) > 0
    assert throttle.locked_for("alice", "device1", 3) == 0  # the user's own browser is not locked out
    for second in (3, 4, 5):
        throttle.record_failure("alice", "device1", second)
    assert throttle.locked_for("alice", "device1", 6) > 0
    throttle.record_success("alice", "device2")
    assert throttle.locked_for("alice", "device1", 6) > 0
    throttle.record_success("alice", None)  # a success from an unknown browser leaves others' guesses counted
    assert throttle.locked_for("alice", None, 6) > 0
    assert replica().throttle.unlock("ALICE ") == 2
    assert throttle.locked_for("alice", None, 7) == throttle.locked_for("alice", "device1", 7) == 0
    assert throttle.locked_users(7) == {"no-such-user": pytest.approx(595)}


def test_tokens_are_kept_as_hashes_and_revoked_everywhere(replica: Replica, request: pytest.FixtureRequest) -> None:
    a, b = replica(), replica()
    record, token = a.tokens.create_token("analyst", auth.hash_password("x", rounds=4))
    other_record, other = a.tokens.create_token("admin", auth.hash_password("y", rounds=4))
    assert looks_like_token(token) and record.token_sha256 == hash_token(token)
    assert b.tokens.find_token(token) == record
    assert b.tokens.find_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert b.tokens.find_token("not a token") is None
    assert [r.id for r in b.tokens.fetch_tokens()] == [record.id, other_record.id]  # oldest first
    if "catalog_url" in request.fixturenames:
        stored = repr(_pg_rows(request.getfixturevalue("catalog_url"), "SELECT * FROM insights.auth_api_tokens"))
        assert token not in stored and token[3:] not in stored and hash_token(token) in stored
    assert a.tokens.revoke_token(record.id) == record
    assert b.tokens.find_token(token) is None  # refused by the other process at once
    assert b.tokens.find_token(other) == other_record
    assert a.tokens.revoke_token(record.id) is None


def test_the_generated_cookie_key_is_made_once_and_shared(replica: Replica) -> None:
    key = replica().ensure_generated_cookie_key()
    assert auth.validate_cookie_key(key) == key
    assert replica().ensure_generated_cookie_key() == key


# PostgreSQL only: many replicas at once


def _settings(catalog_url: str, tmp_path: Path, name: str) -> Settings:
    return make_settings(
        tmp_path / name, store="ducklake", catalog_url=catalog_url, lake_data_path=str(tmp_path / "lake")
    )


def _fresh_process_state(settings: Settings) -> AuthState:
    """An AuthState with its own connections and nothing remembered, as a newly started replica has."""
    pg_auth._databases.pop(settings.catalog_url.get_secret_value(), None)  # type: ignore[union-attr]
    return auth_state(settings)


def _at_once(count: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_replicas_starting_together_create_the_tables_and_seed_the_demo_users_once(
    catalog_url: str, tmp_path: Path
) -> None:
    databases = [pg_auth.SharedAuthDatabase(catalog_url) for _ in range(8)]  # 8 replicas, 8 connections
    seeded = _at_once(8, lambda i: pg_auth.PostgresUsers(databases[i]).ensure_demo_users())
    assert seeded.count(True) == 1
    assert _pg_rows(catalog_url, "SELECT count(*) FROM insights.auth_users") == [(4,)]
    keys = _at_once(8, lambda i: pg_auth.ensure_shared_cookie_key(databases[i]))
    assert len(set(keys)) == 1


def test_failures_counted_at_once_on_many_replicas_are_all_counted(catalog_url: str, tmp_path: Path) -> None:
    settings = _settings(catalog_url, tmp_path, "a").model_copy(update={"login_max_attempts": 40})
    throttles = [pg_auth.PostgresThrottle(pg_auth.SharedAuthDatabase(catalog_url), 100, 600) for _ in range(8)]
    _at_once(8, lambda i: [throttles[i].record_failure("alice", None, 10.0 + n) for n in range(5)])
    assert _pg_rows(catalog_url, "SELECT failures FROM insights.auth_login_failures") == [(40,)]
    assert auth_state(settings).throttle.locked_for("alice", None, 20.0) > 0


def test_a_postgresql_restart_is_survived_by_kept_connections(
    catalog_url: str, tmp_path: Path, postgres_server: object
) -> None:
    state = _fresh_process_state(_settings(catalog_url, tmp_path, "a"))
    record, token = state.tokens.create_token("admin", auth.hash_password("x", rounds=4))
    postgres_server.restart()  # type: ignore[attr-defined]
    assert state.tokens.find_token(token) == record  # the kept connection is dead: a new one is made


def test_no_database_is_a_one_line_error_without_the_password(tmp_path: Path) -> None:
    from insights_core.errors import ControlChannelError
    from tests.servers import free_port

    url = f"postgresql://insights:s3cret-pw@127.0.0.1:{free_port()}/none"
    state = _fresh_process_state(_settings(url, tmp_path, "a"))
    with pytest.raises(ControlChannelError) as caught:
        state.logouts.fetch_logouts()
    assert "s3cret-pw" not in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_manages_users_in_postgresql_and_imports_a_users_file(
    catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "INSIGHTS_DATA_DIR": str(tmp_path / "data"),
        "INSIGHTS_STORE": "ducklake",
        "INSIGHTS_CATALOG_URL": catalog_url,
        "INSIGHTS_LAKE_DATA_PATH": str(tmp_path / "lake"),
    }.items():
        monkeypatch.setenv(name, value)
    users_file = tmp_path / "auth.yaml"
    auth.save_auth_config(auth.demo_auth_config(), users_file)
    assert auth.main(["import-users", str(users_file)]) == 0
    assert "4 added to PostgreSQL" in capsys.readouterr().out
    assert auth.main(["import-users", str(users_file)]) == 0
    assert "kept existing admin, analyst, manager, viewer" in capsys.readouterr().out
    assert auth.main(["set-role", "viewer", "--role", "analyst"]) == 0
    assert auth.main(["list-users"]) == 0
    assert "viewer\tanalyst" in capsys.readouterr().out
    assert auth.main(["--config", str(users_file), "list-users"]) == 2
    assert "users live in PostgreSQL" in capsys.readouterr().err
    assert auth.main(["set-role", "nobody", "--role", "admin"]) == 2
    assert not (tmp_path / "data" / "auth.yaml").exists()
