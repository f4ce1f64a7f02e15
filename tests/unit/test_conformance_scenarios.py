"""The conformance scenarios follow their format, and a stray key or op is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.scenario_files import ScenarioError, check_scenario, load_scenarios, uses_peer

SEQUENTIAL: dict[str, Any] = {
    "workflow": {"nodes": [{"step": "a", "do": [{"op": "append", "value": "a"}]}]},
    "expect": {
        "status": "completed",
        "attempts": [{"step": "a", "attempt": 1, "status": "completed"}],
    },
}


def test_every_scenario_file_follows_the_format() -> None:
    scenarios = load_scenarios()  # checks each one
    assert "sequential" in scenarios
    assert [name for name, s in scenarios.items() if uses_peer(s)] == ["child_workflow_peer"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["workflow"]["nodes"][0]["do"][0].update(atempts=[1]),
            "unknown key(s) ['atempts']",
        ),
        (
            lambda s: s["workflow"]["nodes"][0]["do"].append({"op": "explode"}),
            "unknown op 'explode'",
        ),
        (lambda s: s["workflow"]["nodes"][0].update(branch="b"), "exactly one of"),
        (
            lambda s: s["workflow"]["nodes"][0].update(retry={"tries": 2}),
            "unknown key(s) ['tries']",
        ),
        (lambda s: s["expect"]["attempts"][0].pop("status"), "missing key(s) ['status']"),
        (lambda s: s.update(fault={"kind": "unplug"}), "kind is one of"),
        (
            lambda s: s["workflow"]["nodes"][0]["do"].append({"op": "record", "from": "pid"}),
            "record from one of",
        ),
    ],
)
def test_a_scenario_off_the_format_is_refused_naming_the_place(change: Any, message: str) -> None:
    scenario = copy.deepcopy(SEQUENTIAL)
    check_scenario("s", scenario)
    change(scenario)
    with pytest.raises(ScenarioError) as raised:
        check_scenario("s", scenario)
    assert message in str(raised.value)
    assert str(raised.value).startswith("s")
