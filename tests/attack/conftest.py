"""Attack tests reuse the integration fixtures (the sandbox over HTTPS, clients)."""

from tests.integration.conftest import (  # noqa: F401
    client,
    client_for,
    configured,
    sandbox,
    start_sandbox,
)
