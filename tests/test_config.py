"""load_config, require_sec_contact and ticker resolution, as the daemon sees them at start-up.

Config files are written into tmp_path; the ticker map is the bundled real
``data/company_tickers.json``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_config, require_sec_contact
from monitor.errors import ConfigError
from monitor.tickers import watched_companies
from tests.conftest import ROOT

REPO_CONFIG = ROOT / "config.toml"
TICKERS_FILE = ROOT / "data" / "company_tickers.json"
# An environment variable no real environment sets, so tests control it completely.
UA_ENV = "MONITOR_TEST_SEC_USER_AGENT_7F3A"


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def config_error(tmp_path: Path, body: str) -> str:
    """The message of the ConfigError that loading ``body`` raises."""
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    return str(excinfo.value)


# --- the repository's own config ---------------------------------------------------


def test_repo_config_loads_with_its_nine_companies() -> None:
    config = load_config(REPO_CONFIG)

    assert [c.ticker for c in config.companies] == [
        "MARA", "CORZ", "IREN", "WULF", "CIFR", "HUT", "RIOT", "CLSK", "APLD",
    ]


def test_repo_config_paths_resolve_against_the_config_folder() -> None:
    config = load_config(REPO_CONFIG)

    assert config.path(config.monitor.db) == ROOT / "data" / "monitor.db"


# --- malformed files: one ConfigError naming the problem ------------------------------


def test_invalid_toml_names_the_file_and_says_not_valid_toml(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sec\nuser_agent = \n")

    assert str(tmp_path / "config.toml") in message
    assert "not valid TOML" in message


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as excinfo:
        load_config(tmp_path / "absent.toml")

    assert str(tmp_path / "absent.toml") in str(excinfo.value)


def test_unknown_key_is_named_with_its_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[sec]\nbogus = 1\n")

    assert "sec.bogus" in message


def test_wrong_type_is_named_with_its_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[http]\nread_timeout = "fast"\n')

    assert "http.read_timeout" in message


def test_base_dir_cannot_be_set_from_the_file(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'base_dir = "/"\n')

    assert "base_dir" in message


@pytest.mark.parametrize(
    "agent",
    [
        "Acme Corp (admin@acme.com)",
        "Acme Corp https://acme.com admin@acme.com",
        "admin@acme.com",
        "Acme Corp",
    ],
    ids=["parentheses", "url", "no-name", "no-email"],
)
def test_user_agent_not_in_secs_form_is_rejected_naming_sec_user_agent(tmp_path: Path, agent: str) -> None:
    message = config_error(tmp_path, f'[sec]\nuser_agent = "{agent}"\n')

    assert "sec.user_agent" in message


def test_user_agent_in_secs_form_is_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[sec]\nuser_agent = "Acme Research admin@acme-research.com"\n')

    assert load_config(path).sec.user_agent == "Acme Research admin@acme-research.com"


def test_duplicate_tickers_are_rejected_whatever_their_case(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[companies]]\nticker = "MARA"\n\n[[companies]]\nticker = "mara"\n')

    assert "companies" in message
    assert "MARA is listed twice" in message


def test_feed_that_is_not_http_is_rejected_naming_the_company_entry(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[companies]]\nticker = "MARA"\nfeeds = ["file:///etc/passwd"]\n')

    assert "companies.0.feeds" in message


# --- the SEC contact --------------------------------------------------------------


def test_require_sec_contact_without_a_contact_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UA_ENV, raising=False)
    config = load_config(write_config(tmp_path, f'[sec]\nuser_agent_env = "{UA_ENV}"\n'))

    with pytest.raises(ConfigError, match="sec.user_agent") as excinfo:
        require_sec_contact(config)

    assert UA_ENV in str(excinfo.value)


def test_require_sec_contact_reads_the_variable_named_by_user_agent_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UA_ENV, "Env Research env@example.com")
    config = load_config(write_config(tmp_path, f'[sec]\nuser_agent_env = "{UA_ENV}"\n'))

    assert require_sec_contact(config) == "Env Research env@example.com"


def test_environment_contact_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(UA_ENV, "Env Research env@example.com")
    config = load_config(
        write_config(
            tmp_path, f'[sec]\nuser_agent = "File Research file@example.com"\nuser_agent_env = "{UA_ENV}"\n'
        )
    )

    assert require_sec_contact(config) == "Env Research env@example.com"


def test_require_sec_contact_rejects_a_bad_contact_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UA_ENV, "Env Research (https://example.com)")
    config = load_config(write_config(tmp_path, f'[sec]\nuser_agent_env = "{UA_ENV}"\n'))

    with pytest.raises(ConfigError, match="sec.user_agent"):
        require_sec_contact(config)


# --- tickers → CIK ----------------------------------------------------------------


def companies_config(tmp_path: Path, companies: str) -> Path:
    return write_config(tmp_path, f"[sec]\ntickers_file = '{TICKERS_FILE}'\n\n{companies}")


def test_watched_companies_resolves_mara_from_the_bundled_ticker_map(tmp_path: Path) -> None:
    config = load_config(companies_config(tmp_path, '[[companies]]\nticker = "MARA"\n'))

    [mara] = watched_companies(config)

    assert (mara.ticker, mara.cik) == ("MARA", 1507605)
    assert mara.name == "MARATHON DIGITAL HOLDINGS, INC."


def test_watched_companies_keeps_an_explicit_cik(tmp_path: Path) -> None:
    config = load_config(companies_config(tmp_path, '[[companies]]\nticker = "MARA"\ncik = 42\n'))

    [mara] = watched_companies(config)

    assert mara.cik == 42


def test_unknown_ticker_is_a_config_error_naming_its_entry(tmp_path: Path) -> None:
    config = load_config(
        companies_config(tmp_path, '[[companies]]\nticker = "ZZZZQX"\n\n[[companies]]\nticker = "MARA"\n')
    )

    with pytest.raises(ConfigError, match=r"companies\.0\.ticker") as excinfo:
        watched_companies(config)

    assert "ZZZZQX" in str(excinfo.value)


def test_missing_ticker_map_is_a_config_error_naming_sec_tickers_file(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path, "[sec]\ntickers_file = 'nowhere.json'\n\n[[companies]]\nticker = \"MARA\"\n")
    )

    with pytest.raises(ConfigError, match=r"sec\.tickers_file"):
        watched_companies(config)


# --- issue 14.11: values that validated, then crashed the daemon later ------------------------------------


@pytest.mark.parametrize(("section", "key", "value"), [
    ("notify", "digest_timezone", '"Mars/Olympus"'),
    ("notify", "digest_time", '"99:99"'),
    ("schedule", "feeds_poll_minutes", "inf"),
    ("schedule", "feeds_poll_minutes", "1e308"),
    ("notify", "batch_window_minutes", "1e300"),
    ("notify", "retry_base_seconds", "1e300"),
    ("health", "stale_factor", "inf"),
])
def test_a_value_that_would_crash_later_is_a_config_error_naming_its_key(tmp_path, section, key, value):
    """Issue 14.11: each of these passed validation and crashed the scheduler or the outbox later."""
    assert config_error(tmp_path, f"[{section}]\n{key} = {value}\n").split(": ", 2)[1] == f"{section}.{key}"
