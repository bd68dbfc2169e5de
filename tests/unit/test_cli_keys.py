"""`switchyard keys create | list | revoke`: the key alone on the last line, listings without it, revocation by
prefix, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import main


@pytest.fixture(autouse=True)
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_ENV", "test")
    monkeypatch.setenv("SWITCHYARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SWITCHYARD_APP_DATA_DIR", str(tmp_path))


def test_create_prints_the_key_alone_on_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The last line is the key and nothing else; list shows its prefix, scopes and expiry but never the key."""
    argv = ["keys", "create", "--customer", "acme", "--name", "ci", "--scope", "chat", "--expires", "30d"]
    assert main(argv) == 0
    key = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    assert key.startswith("sy-")
    assert len(key) == 46
    assert " " not in key
    assert main(["keys", "list", "--customer", "acme", "--json"]) == 0
    listed = capsys.readouterr().out
    assert key not in listed
    [row] = [json.loads(line) for line in listed.splitlines()]
    assert (row["prefix"], row["scopes"], row["revoked_at"]) == (key[:11], ["chat"], None)
    assert row["expires_at"] is not None


def test_create_stores_the_keys_own_limits(capsys: pytest.CaptureFixture[str]) -> None:
    """--rpm/--tpm/--concurrent/--daily-usd/--monthly-usd are stored with the key and listed; a negative one exits 1
    with a line naming the limit."""
    argv = ["keys", "create", "--customer", "acme", "--name", "ci", "--rpm", "30", "--concurrent", "2"]
    assert main([*argv, "--daily-usd", "1.5", "--tpm", "9000", "--monthly-usd", "20"]) == 0
    assert "requests_per_minute=30" in capsys.readouterr().out
    assert main(["keys", "list", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["limits"] == {
        "requests_per_minute": 30, "tokens_per_minute": 9000, "concurrent_streams": 2, "daily_budget_usd": 1.5,
        "monthly_budget_usd": 20.0,
    }  # fmt: skip
    assert main(["keys", "create", "--customer", "acme", "--name", "bad", "--rpm", "-1"]) == 1
    assert "limits.requests_per_minute" in capsys.readouterr().err


def test_revoke_by_prefix_then_unknown_is_an_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Revoking by prefix says which key; a prefix matching nothing exits 1 with one line naming the error."""
    assert main(["keys", "create", "--customer", "acme", "--name", "ci"]) == 0
    key = capsys.readouterr().out.splitlines()[-1]
    assert main(["keys", "revoke", key[:11]]) == 0
    assert "revoked key_" in capsys.readouterr().out
    assert main(["keys", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "sy-zzzzzz"]) == 1
    assert capsys.readouterr().err.startswith("switchyard: not_found:")


def test_a_bad_lifetime_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """`--expires soon` is an argparse error, before anything is created."""
    with pytest.raises(SystemExit):
        main(["keys", "create", "--customer", "acme", "--name", "ci", "--expires", "soon"])
    assert "invalid lifetime" in capsys.readouterr().err
