"""Auth and transport: the exact header, typed 401/403/404, TLS 1.2 minimum, trusted CA only."""

from __future__ import annotations

import socket
import ssl
from datetime import date
from pathlib import Path

import pytest
import requests
import trustme
from achieveit_sandbox import Role, SandboxServer
from achieveit_sync.api_key import StaticApiKey
from achieveit_sync.client import AchieveItClient
from achieveit_sync.errors import (
    AccessDeniedError,
    AuthenticationError,
    NotFoundError,
    TransportSecurityError,
)
from achieveit_sync.settings import ClientSettings
from achieveit_sync.updates import ProgressUpdate, Status

from tests.integration.conftest import ClientFactory, SandboxFactory

PX_PLAN = "PX-2027"


def progress(external_id: str = "PX-1.3") -> list[ProgressUpdate]:
    return [ProgressUpdate(external_id, Status.ON_TRACK, date(2026, 11, 1))]


def test_every_request_carries_the_exact_api_key_header(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    client.export_page(PX_PLAN, take=5)
    client.submit_updates("header-check.json", progress())

    recorded = sandbox.recorded_requests()
    assert [r.authorization_scheme for r in recorded] == ["API-KEY", "API-KEY"]
    assert [r.user_id for r in recorded] == ["svc-api", "svc-api"]


@pytest.mark.parametrize("scheme", ["Bearer", "api-key", "API-KEY:", "Basic"])
def test_the_sandbox_refuses_any_other_authorization_form(
    sandbox: SandboxServer, scheme: str
) -> None:
    response = requests.get(
        f"{sandbox.base_url}/exports/plans/{PX_PLAN}",
        headers={"Authorization": f"{scheme} {sandbox.api_key}"},
        verify=str(sandbox.ca_file),
        timeout=10,
    )

    assert response.status_code == 401


def test_a_wrong_key_is_a_permanent_error_naming_the_plan_and_is_not_retried(
    sandbox: SandboxServer, client_for: ClientFactory
) -> None:
    client = client_for(sandbox, api_key="not-the-right-key")

    with pytest.raises(AuthenticationError) as error:
        client.export_page(PX_PLAN)

    assert error.value.status == 401
    assert f"plan '{PX_PLAN}'" in str(error.value)
    assert len(sandbox.recorded_requests()) == 1


def test_api_access_switched_off_is_403(sandbox: SandboxServer, client: AchieveItClient) -> None:
    with sandbox.organisation() as organisation:
        organisation.api_access_enabled = False

    with pytest.raises(AccessDeniedError, match="API access is not enabled"):
        client.export_page(PX_PLAN)


def test_a_user_without_access_to_the_plan_gets_403_naming_the_plan(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    with sandbox.organisation():
        sandbox.service_account.plan_roles[PX_PLAN] = Role.NONE

    with pytest.raises(AccessDeniedError) as error:
        client.export_page(PX_PLAN)

    assert error.value.status == 403
    assert f"plan '{PX_PLAN}'" in str(error.value)


def test_a_viewer_posting_an_update_gets_403_naming_the_item(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    with sandbox.organisation():
        sandbox.service_account.plan_roles[PX_PLAN] = Role.VIEWER

    with pytest.raises(AccessDeniedError) as error:
        client.submit_updates("viewer.json", progress("PX-1.3"))

    assert "'PX-1.3'" in str(error.value)
    assert sandbox.stored_updates() == []


def test_an_item_level_lock_is_enforced_while_the_plan_role_allows_editing(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    with sandbox.organisation() as organisation:
        locked = organisation.item_by_external_id("PX-2.3")
        assert locked is not None
        sandbox.service_account.item_roles[locked.id] = Role.VIEWER

    client.submit_updates("ok.json", progress("PX-1.3"))
    with pytest.raises(AccessDeniedError, match=r"PX-2\.3"):
        client.submit_updates("locked.json", progress("PX-2.3"))


def test_an_unknown_plan_is_404(client: AchieveItClient) -> None:
    with pytest.raises(NotFoundError, match="plan 'no-such-plan'"):
        client.export_page("no-such-plan")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_server_offering_only_tls_1_1_is_refused(
    start_sandbox: SandboxFactory, client_for: ClientFactory
) -> None:
    old_server = start_sandbox(tls_versions=(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1))
    # Control: a client willing to speak TLS 1.1 does get through, so the server is real.
    lenient = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lenient.load_verify_locations(str(old_server.ca_file))
    lenient.minimum_version = ssl.TLSVersion.TLSv1_1
    lenient.set_ciphers("DEFAULT:@SECLEVEL=0")
    host, port = old_server.base_url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with lenient.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() == "TLSv1.1"

    with pytest.raises(TransportSecurityError, match="TLS"):
        client_for(old_server).export_page(PX_PLAN)
    assert old_server.recorded_requests() == []


def test_a_certificate_from_an_untrusted_ca_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    client = AchieveItClient(
        ClientSettings(base_url=sandbox.base_url, ca_bundle=other_ca),
        StaticApiKey(sandbox.api_key),
    )

    with client, pytest.raises(TransportSecurityError, match="certificate verify failed"):
        client.export_page(PX_PLAN)
    assert sandbox.recorded_requests() == []


def test_the_extra_ca_is_trusted_even_when_requests_ca_bundle_is_set(
    sandbox: SandboxServer, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This environment exports REQUESTS_CA_BUNDLE, which overrides Session.verify; the
    # sandbox CA must still be trusted because it lives in the adapter's SSLContext.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)

    page = client_for(sandbox).export_page(PX_PLAN, take=1)

    assert len(page.items) == 1


def test_connections_are_reused_across_requests(
    sandbox: SandboxServer, client: AchieveItClient
) -> None:
    for skip in range(5):
        client.export_page(PX_PLAN, skip=skip, take=1)

    ports = {r.peer_port for r in sandbox.recorded_requests()}
    assert len(ports) == 1
