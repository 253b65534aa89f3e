"""Load, faults, crashes, duplicated and reordered deliveries: no valid row lost, nothing
stored twice that was not reported as ambiguous, no secret anywhere, concurrency bounded."""

from __future__ import annotations

import time

import pytest
from achieveit_sandbox import Fault, FaultPlan, SandboxServer

from tests.conftest import RECOGNISABLE_KEY, all_log_text
from tests.integration.ingest_stack import IngestStack
from tests.stress.conftest import Scale
from tests.stress.harness import (
    Figures,
    LoadRun,
    make_files,
    metric_item_ids,
    settle_figures,
)

FAULT_RATES = {
    Fault.THROTTLE: 0.02,
    Fault.SERVER_ERROR: 0.015,
    Fault.UNAVAILABLE: 0.015,
    Fault.SLOW: 0.01,
    Fault.RESET_BEFORE: 0.02,
    Fault.RESET_AFTER: 0.02,
}


def run_suite(
    name: str,
    stack: IngestStack,
    sandbox: SandboxServer,
    scale: Scale,
    captured_logs: pytest.LogCaptureFixture,
    **run_options: object,
) -> Figures:
    started = time.monotonic()
    plans = ["LA", "LB"]
    files = make_files(
        scale.files,
        scale.max_rows,
        plans,
        scale.plan_size,
        seed=7,
        metric_ids=metric_item_ids(sandbox, plans),
    )
    for dropped in files:
        stack.drop(dropped.key, dropped.body)
    run = LoadRun(stack, **run_options)  # type: ignore[arg-type]
    run.drain()
    figures = Figures(
        suite=f"{name} ({scale.name})",
        kills=run.kills,
        invocations=run.invocations,
        deliveries=run.deliveries,
        retries=run.retries,
        redriven_from_dead_letters=run.redriven,
    )
    faults = [r for r in sandbox.recorded_requests() if r.fault]
    figures.faults_injected = len(faults)
    # botocore's own DEBUG log prints Secrets Manager responses, secret values included:
    # that is the SDK's behaviour, and why the template never sets botocore to DEBUG.
    botocore_hits = all_log_text(captured_logs).count(RECOGNISABLE_KEY)
    figures = settle_figures(
        figures,
        stack,
        sandbox,
        files,
        RECOGNISABLE_KEY,
        all_log_text(captured_logs, exclude=("botocore",)),
    )
    if botocore_hits:
        figures.notes.append(f"botocore DEBUG lines holding the secret: {botocore_hits}")
    figures.seconds = round(time.monotonic() - started, 1)
    figures.record()
    assert figures.rows_lost == 0
    assert figures.unexpected_rows_stored == 0
    assert figures.duplicates_stored <= figures.rows_reported_ambiguous
    assert not [n for n in figures.notes if "named" in n]  # every ambiguous row is named
    assert figures.secret_hits == 0
    assert figures.reports_written == figures.files
    assert figures.dead_letters == 0
    assert figures.max_concurrent_requests <= 2
    return figures


def test_load_many_files_at_once(
    load_stack: IngestStack,
    load_sandbox: SandboxServer,
    scale: Scale,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    figures = run_suite("load", load_stack, load_sandbox, scale, captured_logs)

    assert figures.rows_stored == figures.valid_rows
    assert figures.duplicates_stored == figures.rows_reported_ambiguous == 0


def test_faults_at_ten_percent(
    load_stack: IngestStack,
    load_sandbox: SandboxServer,
    scale: Scale,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    load_sandbox.set_faults(
        FaultPlan(rates=FAULT_RATES, seed=11, retry_after="0", slow_seconds=1.5)
    )

    figures = run_suite("faults", load_stack, load_sandbox, scale, captured_logs)

    assert figures.faults_injected > 0
    assert (
        figures.rows_stored + figures.rows_reported_ambiguous - figures.ambiguous_applied
        == figures.valid_rows
    )


def test_crashes_with_duplicated_and_reordered_deliveries(
    load_stack: IngestStack,
    load_sandbox: SandboxServer,
    scale: Scale,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    figures = run_suite(
        "crashes + duplicated/reordered",
        load_stack,
        load_sandbox,
        scale,
        captured_logs,
        kill_probability=0.01,
        max_copies=3,
        seed=5,
    )

    assert figures.kills > 0
    assert figures.deliveries > figures.files


def test_duplicated_and_reordered_deliveries_alone_store_each_row_once(
    load_stack: IngestStack,
    load_sandbox: SandboxServer,
    scale: Scale,
    captured_logs: pytest.LogCaptureFixture,
) -> None:
    figures = run_suite(
        "duplicated/reordered", load_stack, load_sandbox, scale, captured_logs, max_copies=3, seed=3
    )

    assert figures.rows_stored == figures.valid_rows
    assert figures.duplicates_stored == 0
