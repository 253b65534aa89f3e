"""Settings: HTTPS only, the government host one setting away, clear errors per variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import (
    COMMERCIAL_BASE_URL,
    GOVERNMENT_BASE_URL,
    ApiKeySettings,
    BackupSettings,
    ClientSettings,
    CliSettings,
    IngestSettings,
    ObservabilitySettings,
    ReadBounds,
    RetrySettings,
    configuration_table,
)
from achieveit_sync.updates import BodyFormat


def test_defaults_to_the_commercial_host() -> None:
    assert ClientSettings.from_env({}).base_url == COMMERCIAL_BASE_URL


def test_the_government_host_is_one_variable_away() -> None:
    settings = ClientSettings.from_env({"ACHIEVEIT_BASE_URL": GOVERNMENT_BASE_URL + "/"})

    assert settings.base_url == "https://gov-api.achieveit.com"


@pytest.mark.parametrize(
    "url",
    ["http://api.achieveit.com", "api.achieveit.com", "ftp://x", "https://", "HTTP://a.b"],
)
def test_a_non_https_base_url_is_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="ACHIEVEIT_BASE_URL"):
        ClientSettings(base_url=url)


def test_credentials_in_the_base_url_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="plain origin"):
        ClientSettings(base_url="https://user:secret@api.achieveit.com")


def test_timeouts_and_attempts_come_from_the_environment() -> None:
    settings = ClientSettings.from_env(
        {
            "ACHIEVEIT_CONNECT_TIMEOUT_SECONDS": "2.5",
            "ACHIEVEIT_READ_TIMEOUT_SECONDS": "30",
            "ACHIEVEIT_MAX_ATTEMPTS": "7",
        }
    )

    assert (settings.connect_timeout, settings.read_timeout) == (2.5, 30.0)
    assert settings.retry.max_attempts == 7


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ACHIEVEIT_READ_TIMEOUT_SECONDS", "soon"),
        ("ACHIEVEIT_READ_TIMEOUT_SECONDS", "-1"),
        ("ACHIEVEIT_CONNECT_TIMEOUT_SECONDS", "nan"),
        ("ACHIEVEIT_MAX_ATTEMPTS", "0"),
        ("ACHIEVEIT_MAX_ATTEMPTS", "2.5"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        ClientSettings.from_env({variable: value})


def test_a_missing_ca_bundle_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ACHIEVEIT_CA_BUNDLE"):
        ClientSettings.from_env({"ACHIEVEIT_CA_BUNDLE": str(tmp_path / "missing.pem")})


def test_retry_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError):
        RetrySettings(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetrySettings(backoff_base=-1)


# -- one settings module ---------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "achieveit_sync"
INGEST = {
    "INGEST_QUEUE_URL": "https://sqs/q",
    "IDEMPOTENCY_TABLE": "idem",
    "CHECKPOINT_TABLE": "cp",
    "ACHIEVEIT_API_KEY_SECRET": "s",
}
BACKUP = {"BACKUP_BUCKET": "backups", "ACHIEVEIT_API_KEY_SECRET": "s"}


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"os\.environ|getenv\(", path.read_text())
    ]

    assert readers == ["settings.py"]


def test_the_readme_documents_exactly_the_variables_the_code_reads() -> None:
    readme = (PACKAGE.parents[1] / "README.md").read_text()

    assert configuration_table() in readme


def test_ingest_defaults() -> None:
    settings = IngestSettings.from_env(INGEST)

    assert settings.batch_size == 500
    assert settings.body_format is BodyFormat.JSON
    assert settings.time_margin_seconds == 120
    assert settings.secret_max_age_seconds == 300
    assert settings.notification_topic_arn is None
    assert settings.bounds == ReadBounds(1_000_000, 2_000_000, 512 * 1024**2)


def test_backup_defaults_and_plans() -> None:
    settings = BackupSettings.from_env({**BACKUP, "PLAN_IDS": " P-1, ,P-2 "})

    assert settings.plan_ids == ("P-1", "P-2")
    assert settings.time_zone == "UTC"
    assert settings.expiration_days == 400
    assert settings.secret_max_age_seconds == 300


@pytest.mark.parametrize(
    ("model", "base", "name", "value", "says"),
    [
        (IngestSettings, INGEST, "INGEST_BATCH_SIZE", "0", "of 1 or more"),
        (IngestSettings, INGEST, "INGEST_BATCH_SIZE", "1e3", "whole number"),
        (IngestSettings, INGEST, "INGEST_BODY_FORMAT", "xml", "json or csv"),
        (IngestSettings, INGEST, "INGEST_TIME_MARGIN_SECONDS", "-5", "whole number of seconds"),
        (IngestSettings, INGEST, "INGEST_MAX_ROWS", "lots", "whole number"),
        (IngestSettings, INGEST, "INGEST_MAX_LINES", "0", "of 1 or more"),
        (IngestSettings, INGEST, "INGEST_MAX_BYTES", "1.5", "whole number of bytes"),
        (IngestSettings, INGEST, "ACHIEVEIT_SECRET_MAX_AGE_SECONDS", "5m", "number of seconds"),
        (IngestSettings, INGEST, "INGEST_QUEUE_URL", "", "is not set"),
        (IngestSettings, INGEST, "IDEMPOTENCY_TABLE", " ", "is not set"),
        (IngestSettings, INGEST, "CHECKPOINT_TABLE", "", "is not set"),
        (IngestSettings, INGEST, "ACHIEVEIT_API_KEY_SECRET", "", "is not set"),
        (IngestSettings, INGEST, "ACHIEVEIT_READ_TIMEOUT_SECONDS", "nan", "positive number"),
        (IngestSettings, INGEST, "ACHIEVEIT_MAX_ATTEMPTS", "0", "of 1 or more"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "", "is not set"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "arn:aws:s3:::backups", "name alone"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "s3://backups", "name alone"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "backups/prefix", "name alone"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "My_Backups", "3 to 63 lower-case"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "b", "3 to 63 lower-case"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "b" * 64, "3 to 63 lower-case"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "a..b", "two dots"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "192.168.1.1", "IP address"),
        (BackupSettings, BACKUP, "BACKUP_BUCKET", "xn--backups", "reserved"),
        (BackupSettings, BACKUP, "BACKUP_TIME_ZONE", "Mars/Olympus", "IANA time zone"),
        (BackupSettings, BACKUP, "BACKUP_EXPIRATION_DAYS", "0", "whole number of days"),
        (BackupSettings, BACKUP, "ACHIEVEIT_SECRET_MAX_AGE_SECONDS", "-1", "number of seconds"),
        (BackupSettings, BACKUP, "ACHIEVEIT_BASE_URL", "http://x", "https://"),
        (ObservabilitySettings, {}, "ACHIEVEIT_TRACING", "maybe", "true or false"),
        (CliSettings, {}, "INGEST_MAX_ROWS", "0", "of 1 or more"),
    ],
)
def test_every_bad_value_is_refused_naming_the_variable_and_what_it_takes(
    model: type, base: dict[str, str], name: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        model.from_env({**base, name: value})  # type: ignore[attr-defined]

    assert name in str(error.value)
    assert says in str(error.value)


@pytest.mark.parametrize(
    "name", ["abc", "achieveit-sync-backups-123456789012", "my.backups.example", "a" * 63]
)
def test_bucket_names_s3_accepts_are_accepted(name: str) -> None:
    assert BackupSettings.from_env({**BACKUP, "BACKUP_BUCKET": name}).bucket == name


def test_the_same_secret_cache_setting_is_read_the_same_way_everywhere() -> None:
    for model, base in ((IngestSettings, INGEST), (BackupSettings, BACKUP)):
        with pytest.raises(ConfigurationError, match="ACHIEVEIT_SECRET_MAX_AGE_SECONDS"):
            model.from_env({**base, "ACHIEVEIT_SECRET_MAX_AGE_SECONDS": "x"})  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="ACHIEVEIT_SECRET_MAX_AGE_SECONDS"):
        ApiKeySettings.from_env(
            {"ACHIEVEIT_API_KEY": "k" * 20, "ACHIEVEIT_SECRET_MAX_AGE_SECONDS": "x"}
        )


def test_the_key_source() -> None:
    key = ApiKeySettings.from_env({"ACHIEVEIT_API_KEY": "k" * 20, "ACHIEVEIT_API_KEY_SECRET": "s"})
    secret = ApiKeySettings.from_env({"ACHIEVEIT_API_KEY_SECRET": "s"})
    lambda_only = ApiKeySettings.from_env(
        {"ACHIEVEIT_API_KEY": "k" * 20, "ACHIEVEIT_API_KEY_SECRET": "s"}, secret_only=True
    )

    assert key.key is not None  # the key wins
    assert "k" * 20 not in repr(key)
    assert (secret.key, secret.secret_id) == (None, "s")
    assert (lambda_only.key, lambda_only.secret_id) == (None, "s")  # never the key on a Lambda
    with pytest.raises(ConfigurationError, match="no API key"):
        ApiKeySettings.from_env({})


def test_the_cli_state_folder() -> None:
    assert CliSettings.from_env({"ACHIEVEIT_SYNC_STATE_DIR": "/s"}).state_dir == Path("/s")
    assert CliSettings.from_env({"XDG_STATE_HOME": "/x"}).state_dir == Path("/x/achieveit-sync")
    assert CliSettings.from_env({}).state_dir.parts[-3:] == (".local", "state", "achieveit-sync")
    home = CliSettings.from_env({"ACHIEVEIT_SYNC_STATE_DIR": "~/sync-state"}).state_dir
    assert home == Path.home() / "sync-state"  # not a folder named '~' wherever one runs
    with pytest.raises(ConfigurationError, match="must be an absolute path"):
        CliSettings.from_env({"ACHIEVEIT_SYNC_STATE_DIR": "state"})


def test_observability_defaults() -> None:
    assert ObservabilitySettings.from_env({}) == ObservabilitySettings("AchieveItSync", False)
    assert ObservabilitySettings.from_env({"ACHIEVEIT_TRACING": "TRUE"}).tracing is True
