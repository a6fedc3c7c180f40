"""The Users page (admins): API tokens listed by hint, created (shown once) and revoked."""

from __future__ import annotations

import pytest

from insights_core.api_tokens import TokenStore, looks_like_token
from insights_core.settings import Settings
from tests.api.helpers import PREFIX, api_client, bearer, build_api_data_dir, issue_token
from tests.dashboard.app_harness import assert_clean, open_page, texts, use_data_dir

pytestmark = pytest.mark.usefixtures("entrypoint_runs_every_time")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_api_data_dir(tmp_path_factory.mktemp("users_page") / "data", days_back=3)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, store: Settings) -> None:
    use_data_dir(monkeypatch, store.data_dir)
    (store.data_dir / "api_tokens.json").unlink(missing_ok=True)


def _tokens_table(at) -> list[dict]:  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if "acts as" in d.value.columns).to_dict("records")


def test_an_admin_creates_a_token_shown_once_that_works(store: Settings) -> None:
    at = open_page("admin", "pages/users.py")
    assert_clean(at)
    assert "No API tokens yet." in texts(at)
    at.selectbox(key="users_token_owner").select("analyst")
    at.button(key="users_token_create").click().run()
    assert_clean(at)
    shown = [c.value for c in at.code if looks_like_token(c.value)]
    assert len(shown) == 1
    token = shown[0]
    (record,) = TokenStore(store.data_dir).fetch_tokens()
    assert record.username == "analyst" and token not in str(_tokens_table(at))
    assert _tokens_table(at) == [
        {"Id": record.id, "user": "analyst", "token": record.hint, "created": record.created_at, "acts as": "analyst"}
    ]
    with api_client(store) as client:
        assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 200
    at.run()  # the next click: the token is gone from the page for good
    assert not [c.value for c in at.code if looks_like_token(c.value)]


def test_an_admin_revokes_a_token(store: Settings) -> None:
    token_id, token = issue_token(store, "manager")
    _, kept = issue_token(store, "viewer")
    at = open_page("admin", "pages/users.py")
    assert {row["Id"] for row in _tokens_table(at)} == {
        token_id,
        *[r.id for r in TokenStore(store.data_dir).fetch_tokens() if r.username == "viewer"],
    }
    at.selectbox(key="users_token_revoke_id").select(token_id)
    at.button(key="users_token_revoke").click().run()
    assert_clean(at)
    assert [r.username for r in TokenStore(store.data_dir).fetch_tokens()] == ["viewer"]
    with api_client(store) as client:
        assert client.get(f"{PREFIX}/overview", headers=bearer(token)).status_code == 401
        assert client.get(f"{PREFIX}/overview", headers=bearer(kept)).status_code == 200
