"""The JSON API: per-user tokens, OpenAPI, roles, masking; and the CLI that makes tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from antirelou.inbound import receive
from antirelou.phone import mask
from antirelou.service import Service
from antirelou.web.cli_users import tokens, users
from tests.dashboard_kit import PASSWORD, add_accounts, client_for, dashboard_app
from tests.helpers import LINE, sms

GENUINE = "+33612345678"


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "antirelou.toml"
    path.write_text(
        f'database_url = "{database_url}"\n[[lines]]\nnumber = "{LINE}"\nprovider = "sandbox"\n'
    )
    return path


def cli(command: object, *args: str, stdin: str = "") -> str:
    result = CliRunner().invoke(command, list(args), input=stdin)  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result.output


def make_token(config: Path, email: str, role: str) -> str:
    cli(
        users,
        "add",
        email,
        "--role",
        role,
        "--password-stdin",
        "--config",
        str(config),
        stdin=PASSWORD + "\n",
    )
    return cli(tokens, "create", email, "--config", str(config)).splitlines()[0]


def test_cli_makes_accounts_and_tokens(config: Path, service: Service) -> None:
    token = make_token(config, "ops@example.org", "moderator")
    assert token.startswith("arl_")
    assert "ops@example.org moderator" in cli(users, "list", "--config", str(config))
    added = cli(users, "add", "v@example.org", "--role", "viewer", "--password-stdin",
                "--config", str(config), stdin=PASSWORD + "\n")  # fmt: skip
    assert "second factor" not in added  # a viewer sees numbers masked and changes nothing
    added = cli(users, "add", "a@example.org", "--role", "admin", "--password-stdin",
                "--config", str(config), stdin=PASSWORD + "\n")  # fmt: skip
    assert "antirelou users totp enable a@example.org" in added
    refused = CliRunner().invoke(
        users,
        ["add", "x@example.org", "--role", "admin", "--password-stdin", "--config", str(config)],
        input="short\n",
    )
    assert refused.exit_code == 1
    assert "12 characters" in refused.output
    app = dashboard_app(service)
    with client_for(app) as (client, _):
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/overview", headers=headers).status_code == 200
        cli(users, "disable", "ops@example.org", "--config", str(config))
        assert client.get("/api/overview", headers=headers).status_code == 401


def test_api_with_tokens_by_role(config: Path, service: Service) -> None:
    viewer = {"Authorization": f"Bearer {make_token(config, 'v@example.org', 'viewer')}"}
    moderator = {"Authorization": f"Bearer {make_token(config, 'm@example.org', 'moderator')}"}
    admin = {"Authorization": f"Bearer {make_token(config, 'a@example.org', 'admin')}"}
    receipt = receive(service, sms(sender=GENUINE, body="Salut"))
    app = dashboard_app(service)
    with client_for(app) as (client, _):
        seen = client.get(f"/api/senders/{receipt.message_id}", headers=viewer).json()
        assert seen["number"] == mask(GENUINE)
        full = client.get(f"/api/senders/{receipt.message_id}", headers=moderator).json()
        assert full["number"] == GENUINE
        assert full["messages"][0]["body"] == "Salut"
        assert client.post(f"/api/lines/{LINE}/pause", json={}, headers=viewer).status_code == 403
        assert (
            client.post(
                f"/api/lines/{LINE}/pause", json={"reason": "x"}, headers=moderator
            ).status_code
            == 200
        )
        opened = client.post(
            f"/api/lines/{LINE}/incident", json={"note": "forum"}, headers=moderator
        ).json()
        assert (
            client.post(f"/api/lines/{LINE}/incident", json={}, headers=moderator).status_code
            == 409
        )
        assert (
            client.post(f"/api/incidents/{opened['id']}/close", headers=moderator).status_code
            == 200
        )
        assert (
            client.put(
                "/api/caps", json={"daily_cap": 3, "total": 50}, headers=moderator
            ).status_code
            == 403
        )
        assert (
            client.put("/api/caps", json={"daily_cap": 3, "total": 50}, headers=admin).status_code
            == 200
        )
        assert (
            client.put(f"/api/lines/{LINE}/reply", json={"text": " "}, headers=admin).status_code
            == 409
        )
        audit = client.get("/api/audit", headers=moderator).json()
    assert [a["action"] for a in audit[:4]] == [
        "caps_edit",
        "incident_close",
        "incident_open",
        "pause",
    ]
    assert audit[0]["actor"] == "api:a@example.org"


def test_openapi_describes_the_api_with_bearer_tokens(service: Service) -> None:
    app = dashboard_app(service)
    add_accounts(service)
    with client_for(app) as (client, _):
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/overview",
        "/api/messages",
        "/api/incidents/{incident_id}",
        "/api/reply-preview",
    ):
        assert "get" in paths[path]
    assert "post" in paths["/api/lines/{number}/pause"]
    assert "put" in paths["/api/caps"]
    assert not any(p.startswith("/dashboard") for p in paths)  # pages are not API
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    assert paths["/api/overview"]["get"]["security"]


def test_a_malformed_parameter_is_a_400_that_names_it_and_echoes_nothing(
    config: Path, service: Service
) -> None:
    viewer = {"Authorization": f"Bearer {make_token(config, 'v@example.org', 'viewer')}"}
    with client_for(dashboard_app(service)) as (client, _):
        for query in ("before=0612345678x", f"before={2**64}"):
            response = client.get(f"/api/messages?{query}", headers=viewer)
            assert response.status_code == 400
            detail = response.json()["detail"]
            assert detail.startswith("query.before: ")
            for leak in ("0612345678", str(2**64), "File ", ".py"):
                assert leak not in detail


def test_a_nul_character_anywhere_is_a_400(config: Path, service: Service) -> None:
    # PostgreSQL cannot store NUL: it must be refused before it reaches the database.
    moderator = {"Authorization": f"Bearer {make_token(config, 'm@example.org', 'moderator')}"}
    with client_for(dashboard_app(service)) as (client, _):
        paused = client.post(f"/api/lines/{LINE}/pause", json={"reason": "\x00"}, headers=moderator)
        assert paused.status_code == 400
        assert "NUL" in paused.json()["detail"]
        assert client.get("/api/messages?q=%00", headers=moderator).status_code == 400
        assert client.get("/api/overview", headers=moderator).json()["lines"][0]["paused"] is False


@pytest.mark.parametrize("duration", ["86400000000000", "2739726027y", "900000000w", "9" * 400])
def test_a_block_too_long_to_count_is_refused_not_a_500(
    config: Path, service: Service, duration: str
) -> None:
    """Found by the OpenAPI fuzz: a duration past what a datetime can hold was a 500."""
    message = receive(service, sms(sender=GENUINE)).message_id
    moderator = {"Authorization": f"Bearer {make_token(config, 'm@example.org', 'moderator')}"}
    with client_for(dashboard_app(service)) as (client, _):
        path = f"/api/senders/{message}/block"
        refused = client.post(path, json={"duration": duration}, headers=moderator)
        assert refused.status_code == 409, refused.text  # as any operation refused
        assert "duration" in refused.json()["detail"]
        blocked = client.post(path, json={"duration": "36500d"}, headers=moderator)
        assert blocked.status_code == 200, blocked.text
