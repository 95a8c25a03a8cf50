"""Configuration from the environment: rotation lists, defaults, and one-line errors."""

from __future__ import annotations

import os

import pytest

from hookyard.config import Settings, load_settings, redact_url
from hookyard.errors import ConfigurationError, HookyardError

_NAMED = {
    "DATABASE_URL",
    "AMQP_URL",
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_SIGNING_SECRET",
    "LINEAR_WEBHOOK_SECRET",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No variable of the developer's shell may leak into a test (names are read case-insensitively)."""
    for name in list(os.environ):
        upper = name.upper()
        if upper in _NAMED or upper.startswith("HOOKYARD_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_spec():
    settings = load_settings()
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/hookyard"
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.hookyard_max_body_bytes == 26_214_400


def test_unset_secrets_are_empty_so_their_sources_accept_nothing():
    settings = load_settings()
    assert settings.github_webhook_secret == ()
    assert settings.slack_signing_secret == ()
    assert settings.linear_webhook_secret == ()
    assert settings.hookyard_ingest_token == ()


@pytest.mark.parametrize(
    "variable",
    ["GITHUB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET", "LINEAR_WEBHOOK_SECRET", "HOOKYARD_INGEST_TOKEN"],
)
def test_a_comma_separated_secret_becomes_a_rotation_list(monkeypatch, variable):
    monkeypatch.setenv(variable, " new-secret , old-secret,,  ,older ")
    assert getattr(load_settings(), variable.lower()) == ("new-secret", "old-secret", "older")


def test_a_single_secret_becomes_a_one_item_list(monkeypatch):
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "only-one")
    assert load_settings().github_webhook_secret == ("only-one",)


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_a_secret_of_only_commas_and_spaces_is_unset(monkeypatch, value):
    monkeypatch.setenv("SLACK_SIGNING_SECRET", value)
    assert load_settings().slack_signing_secret == ()


def test_a_secret_that_looks_like_json_is_taken_literally(monkeypatch):
    monkeypatch.setenv("LINEAR_WEBHOOK_SECRET", '["a"]')
    assert load_settings().linear_webhook_secret == ('["a"]',)


def test_environment_variable_names_are_case_insensitive(monkeypatch):
    monkeypatch.setenv("hookyard_max_body_bytes", "1024")
    assert load_settings().hookyard_max_body_bytes == 1024


def test_overrides_win_over_the_environment_and_none_means_not_given(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@db:5432/from_env")
    assert load_settings(database_url="postgresql://cli@db:5432/from_cli").database_name == "from_cli"
    assert load_settings(database_url=None).database_name == "from_env"


def test_database_name_and_vhost_are_read_from_the_urls(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.internal:6432/hook%20yard?sslmode=require")
    monkeypatch.setenv("AMQP_URL", "amqps://u:p@mq.internal:5671/tenant%2Fa")
    settings = load_settings()
    assert settings.database_name == "hook yard"
    assert settings.amqp_vhost == "tenant/a"


def test_the_default_amqp_url_means_the_root_vhost():
    assert load_settings().amqp_vhost == "/"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@127.0.0.1:3306/hookyard"),
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432"),
        ("DATABASE_URL", "not a url"),
        ("AMQP_URL", "http://guest:guest@127.0.0.1:15672/"),
        ("AMQP_URL", "127.0.0.1:5672"),
        ("HOOKYARD_MAX_BODY_BYTES", "25MB"),
        ("HOOKYARD_MAX_BODY_BYTES", "0"),
        ("HOOKYARD_MAX_BODY_BYTES", "-1"),
    ],
)
def test_a_bad_value_raises_one_line_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_a_bad_override_names_its_variable():
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings(database_url="sqlite:///hookyard.db")


def test_configuration_errors_share_the_hookyard_root():
    assert issubclass(ConfigurationError, HookyardError)


def test_settings_are_immutable_once_loaded():
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.database_url = "postgresql://x@y/z"  # type: ignore[misc]


def test_settings_are_not_read_at_import_time(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/late")
    assert load_settings().database_name == "late"
    assert isinstance(load_settings(), Settings)


def test_redacted_urls_hide_the_password_only():
    assert redact_url("amqp://guest:s3cret@mq:5672/%2F") == "amqp://guest:***@mq:5672/%2F"
    assert redact_url("postgresql://postgres@db:5432/hookyard") == "postgresql://postgres@db:5432/hookyard"


def test_available_cpus_is_what_this_process_may_use() -> None:
    from hookyard.config import available_cpus  # noqa: PLC0415

    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
