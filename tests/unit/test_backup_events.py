"""Which plans an export event asks for: the schedule's event means the configured plans; an
on-demand event names its own; anything in between is refused, never read as "configured"."""

from __future__ import annotations

from typing import Any

import pytest
from achieveit_sync.backup.lambda_adapter import InvalidEventError, plans_for_event
from achieveit_sync.errors import ConfigurationError

from tests.conftest import load_event

CONFIGURED = ("NIGHTLY-1", "NIGHTLY-2")


@pytest.mark.parametrize(
    "event",
    [load_event("export-schedule.json"), {}, {"source": "aws.events", "detail": {}}],
    ids=["schedule", "empty", "eventbridge"],
)
def test_an_event_without_plans_means_the_configured_plans(event: Any) -> None:
    assert plans_for_event(event, CONFIGURED) == list(CONFIGURED)


@pytest.mark.parametrize(
    ("event", "plans"),
    [
        (load_event("export-on-demand.json"), ["PX-2027"]),
        ({"plans": "P-1"}, ["P-1"]),
        ({"plans": ["P-1", None, 42]}, ["P-1", None, 42]),  # each bad entry fails alone later
        ({"plans": ["P-1"], "source": "me"}, ["P-1"]),
    ],
)
def test_an_on_demand_event_names_its_plans(event: Any, plans: list[object]) -> None:
    assert plans_for_event(event, CONFIGURED) == plans


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ({"plans": None}, '"plans" is null'),
        ({"plans": 5}, '"plans" is a number'),
        ({"plans": True}, '"plans" is true or false'),
        ({"plans": {"P-1": True}}, '"plans" is an object'),
        ({"plans": []}, '"plans" is an empty list'),
        ({"plan": ["P-1"]}, "the event has 'plan' but no \"plans\""),
        ({"Plans": ["P-1"]}, "the event has 'Plans'"),
        ({"plan_ids": ["P-1"]}, "the event has 'plan_ids'"),
        ({"PLANIDS": "P-1"}, "the event has 'PLANIDS'"),
        (["P-1"], "the event is a list, not an object"),
        ("P-1", "the event is a str, not an object"),
        (None, "the event is null, not an object"),
    ],
)
def test_a_malformed_event_is_refused_with_the_shape_it_should_have(event: Any, says: str) -> None:
    with pytest.raises(InvalidEventError) as refused:
        plans_for_event(event, CONFIGURED)

    assert says in str(refused.value)
    assert '{"plans": ["PLAN-ID", ...]}' in str(refused.value)
    assert isinstance(refused.value, ConfigurationError)
