"""Branch keys compare in canonical form, whichever JSON writer produced them."""

from __future__ import annotations

import pytest

from durable._shared import definition_hash
from durable.v1 import definition_pb2 as d
from durable_server.engine.definitions import Definition, canonical_key
from durable_server.engine.states import TaskKind
from durable_server.engine.transitions import ROOT, EnqueueTask, Evaluation, FailLane, Origin, walk

ORIGIN = Origin("0194a3b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b", "default", 0, "v")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('"caf\\u00e9"', '"café"'),  # Python's json.dumps default
        ('"café"', '"café"'),  # JavaScript's JSON.stringify
        ('"\\u0063af\\u00E9"', '"café"'),
        ('"a\\/b"', '"a/b"'),
        ('"tab\\u0009\\u001F\\"\\\\"', '"tab\\t\\u001f\\"\\\\"'),
        (' "x" ', '"x"'),
        ("-0", "0"),
        ("42", "42"),
        ("true", "true"),
        ("false", "false"),
        ("1.0", "1.0"),  # not an integer: no key, left as it is
        ("[1]", "[1]"),
        ("not json", "not json"),
    ],
)
def test_canonical_key(text: str, canonical: str) -> None:
    assert canonical_key(text) == canonical
    assert canonical_key(canonical) == canonical  # a fixed point


def _definition(*keys: str) -> d.WorkflowDefinition:
    cases = [
        d.BranchCase(key_json=k, nodes=[d.Node(step=d.Step(name=f"on_{i}"))])
        for i, k in enumerate(keys)
    ]
    return d.WorkflowDefinition(name="pick", nodes=[d.Node(branch=d.Branch(name="b", cases=cases))])


@pytest.mark.parametrize("definition_key", ['"caf\\u00e9"', '"café"'])
@pytest.mark.parametrize("reported", ['"caf\\u00e9"', '"café"', '"caf\\u00E9"'])
def test_a_key_matches_its_case_whichever_writer_wrote_either(
    definition_key: str, reported: str
) -> None:
    proto = _definition('"tea"', definition_key)
    definition = Definition.from_proto(proto)
    assert definition.version == definition_hash(proto)  # the bytes sent, not canonicalised
    (effect,) = walk(
        definition,
        definition.first,
        "{}",
        {"b": Evaluation(value_json=reported)},
        ORIGIN,
        ROOT,
    )
    assert isinstance(effect, EnqueueTask)
    assert (effect.kind, effect.name) == (TaskKind.STEP, "on_1")


def test_a_float_matches_no_integer_key() -> None:
    definition = Definition.from_proto(_definition("1"))
    evaluations = {"b": Evaluation(value_json="1.0")}
    (effect,) = walk(definition, definition.first, "{}", evaluations, ORIGIN, ROOT)
    assert isinstance(effect, FailLane)
    assert "BranchNoMatch" in effect.error_json
