"""The key from Secrets Manager (Powertools Parameters, cached), and rotation without a
redeploy: a 401 makes the client fetch the secret once more and retry."""

from __future__ import annotations

import json

import boto3
import pytest
from achieveit_sandbox import SandboxServer
from achieveit_sync.api_key import SecretsManagerApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import ConfigurationError
from achieveit_sync.settings import ClientSettings
from mypy_boto3_secretsmanager import SecretsManagerClient

from tests.conftest import RECOGNISABLE_KEY

SECRET = "achieveit-sync/api-key"


@pytest.fixture
def secrets(aws: None) -> SecretsManagerClient:
    return boto3.client("secretsmanager", region_name="us-east-1")


@pytest.mark.parametrize("stored", [RECOGNISABLE_KEY, json.dumps({"apiKey": RECOGNISABLE_KEY})])
def test_the_key_is_read_as_plain_text_or_json(secrets: SecretsManagerClient, stored: str) -> None:
    secrets.create_secret(Name=SECRET, SecretString=stored)

    key = SecretsManagerApiKey(SECRET, secrets_client=secrets).current()

    assert key.reveal() == RECOGNISABLE_KEY


def test_the_key_is_cached_until_a_refresh_is_forced(secrets: SecretsManagerClient) -> None:
    secrets.create_secret(Name=SECRET, SecretString="old-key")
    provider = SecretsManagerApiKey(SECRET, secrets_client=secrets)
    assert provider.current().reveal() == "old-key"

    secrets.put_secret_value(SecretId=SECRET, SecretString="new-key")

    assert provider.current().reveal() == "old-key"  # served from the cache
    refreshed = provider.refresh()
    assert refreshed is not None
    assert refreshed.reveal() == "new-key"
    assert provider.refresh() is None  # nothing newer than what we have


def test_a_missing_secret_is_a_configuration_error_naming_it(secrets: SecretsManagerClient) -> None:
    provider = SecretsManagerApiKey("does/not/exist", secrets_client=secrets)

    with pytest.raises(ConfigurationError, match="does/not/exist"):
        provider.current()


def test_a_rotated_key_works_without_a_redeploy(
    sandbox: SandboxServer, secrets: SecretsManagerClient
) -> None:
    secrets.create_secret(Name=SECRET, SecretString="key-before-rotation")
    provider = SecretsManagerApiKey(SECRET, secrets_client=secrets)
    provider.current()  # cached, as a warm Lambda would have it
    secrets.put_secret_value(SecretId=SECRET, SecretString=sandbox.api_key)
    settings = ClientSettings(base_url=sandbox.base_url, ca_bundle=sandbox.ca_file)

    with AchieveItClient(settings, provider) as client:
        page = client.export_page("PX-2027", take=2)

    assert len(page.items) == 2
    assert [r.status for r in sandbox.recorded_requests()] == [401, 200]


def test_the_templates_placeholder_is_explained_not_sent(secrets: SecretsManagerClient) -> None:
    from achieveit_sync.api_key import PLACEHOLDER

    secrets.create_secret(Name=SECRET, SecretString=PLACEHOLDER)

    with pytest.raises(ConfigurationError, match="put-secret-value --secret-id"):
        SecretsManagerApiKey(SECRET, secrets_client=secrets).current()


def test_the_secret_is_read_in_the_region_its_arn_names_or_aws_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """boto3 reads only AWS_DEFAULT_REGION; people (and Lambda) set AWS_REGION, and an ARN
    names its own region."""
    import boto3
    from achieveit_sync.api_key import provider_for
    from achieveit_sync.settings import ApiKeySettings
    from moto import mock_aws

    with mock_aws():
        london = boto3.client("secretsmanager", region_name="eu-west-2")
        arn = london.create_secret(Name="achieveit/api-key", SecretString=RECOGNISABLE_KEY)["ARN"]
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_REGION", raising=False)
        monkeypatch.delenv("ACHIEVEIT_API_KEY", raising=False)

        monkeypatch.setenv("ACHIEVEIT_API_KEY_SECRET", arn)
        by_arn = provider_for(ApiKeySettings.from_env()).current()

        monkeypatch.setenv("ACHIEVEIT_API_KEY_SECRET", "achieveit/api-key")
        monkeypatch.setenv("AWS_REGION", "eu-west-2")
        by_name = provider_for(ApiKeySettings.from_env()).current()

    assert by_arn.reveal() == RECOGNISABLE_KEY
    assert by_name.reveal() == RECOGNISABLE_KEY
