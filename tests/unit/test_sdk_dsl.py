"""The workflow DSL's definition-time checks, and the definition's content hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import RetryPolicy, StepContext, Workflow, seconds
from durable._definition import definition_hash, to_definition


def first(data: Any) -> Any:
    return data


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a/b", "x" * 129, "é"])
def test_bad_workflow_names(name: str) -> None:
    with pytest.raises(ValueError, match=rf"workflow name {name!r} is invalid"):
        Workflow(name)


@pytest.mark.parametrize("name", ["a", "_a", "order.v2", "pay-out_3", "x" * 128])
def test_good_workflow_names(name: str) -> None:
    assert Workflow(name).name == name


def test_bad_step_and_queue_names() -> None:
    wf = Workflow("wf")
    with pytest.raises(ValueError, match="step name 'no spaces' is invalid"):
        wf.step(name="no spaces")(first)
    with pytest.raises(ValueError, match="queue name 'a b' is invalid"):
        Workflow("wf", queue="a b")


def test_duplicate_step() -> None:
    wf = Workflow("wf")
    wf.step(first)
    with pytest.raises(
        ValueError,
        match="workflow 'wf': the name 'first' is used twice: step at the top level and step at "
        "the top level",
    ):
        wf.step(name="first")(lambda data: data)
    assert [s.name for s in wf.steps] == ["first"]  # the refused step was not added


def test_wrong_arity() -> None:
    wf = Workflow("wf")

    def nothing() -> None:
        pass

    def three(a: Any, b: Any, c: Any) -> None:
        pass

    with pytest.raises(ValueError, match=r"step 'nothing' must take .* it takes 0"):
        wf.step(nothing)
    with pytest.raises(ValueError, match=r"step 'three' must take .* it takes 3"):
        wf.step(three)


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(seconds=-1)])
def test_non_positive_timeouts(bad: timedelta) -> None:
    with pytest.raises(ValueError, match="workflow 'wf': timeout must be positive"):
        Workflow("wf", timeout=bad)
    with pytest.raises(ValueError, match="step 'first': timeout must be positive"):
        Workflow("wf").step(timeout=bad)(first)


def test_retry_must_be_a_policy() -> None:
    with pytest.raises(ValueError, match="step 'first': retry must be a RetryPolicy"):
        Workflow("wf").step(retry={"max_attempts": 3})(first)  # type: ignore[call-overload]


def test_sync_async_and_context_detection() -> None:
    wf = Workflow("wf")

    @wf.step
    def plain(data: Any) -> Any:
        return data

    @wf.step
    async def with_ctx(data: Any, ctx: StepContext) -> Any:
        return data

    @wf.step
    def keyword_only(data: Any, *, option: int = 1) -> Any:
        return data

    @wf.step
    def optional_ctx(data: Any, ctx: StepContext | None = None) -> Any:
        return data

    got = {s.name: (s.is_async, s.takes_context) for s in wf.steps}
    assert got == {
        "plain": (False, False),
        "with_ctx": (True, True),
        "keyword_only": (False, False),
        "optional_ctx": (False, True),
    }
    assert [s.name for s in wf.steps] == ["plain", "with_ctx", "keyword_only", "optional_ctx"]
    assert wf.get_step("plain").fn is plain


def test_decorator_returns_the_function() -> None:
    wf = Workflow("wf")
    assert wf.step(first) is first
    assert wf.step(name="again")(first) is first


def make(retry: RetryPolicy | None = None, timeout: timedelta | None = None) -> Workflow:
    wf = Workflow("order", timeout=timeout, queue="q")
    wf.step(first)
    wf.step(name="second", retry=retry)(first)
    return wf


def test_definition_hash_is_stable() -> None:
    a = definition_hash(to_definition(make(RetryPolicy(max_attempts=3))))
    b = definition_hash(to_definition(make(RetryPolicy(max_attempts=3))))
    assert a == b
    assert len(a) == 64
    assert int(a, 16) >= 0


def test_definition_hash_changes_with_the_retry_policy() -> None:
    hashes = {
        definition_hash(to_definition(make(retry)))
        for retry in (
            None,
            RetryPolicy(max_attempts=3),
            RetryPolicy(max_attempts=4),
            RetryPolicy(max_attempts=3, backoff="linear"),
            RetryPolicy(max_attempts=3, initial_delay=seconds(2)),
        )
    }
    assert len(hashes) == 5


def test_definition_hash_changes_with_the_timeout() -> None:
    assert definition_hash(to_definition(make(timeout=seconds(5)))) != definition_hash(
        to_definition(make(timeout=seconds(6)))
    )


def test_definition_contents() -> None:
    msg = to_definition(make(RetryPolicy(max_attempts=2), timeout=seconds(9)))
    assert msg.name == "order"
    assert msg.queue == "q"
    assert [n.WhichOneof("kind") for n in msg.nodes] == ["step", "step"]
    steps = [n.step for n in msg.nodes]
    assert [s.name for s in steps] == ["first", "second"]
    assert not steps[0].HasField("retry")
    assert steps[1].retry.max_attempts == 2
    assert msg.timeout.ToTimedelta() == seconds(9)
    assert msg.max_step_runs == 0


def test_workflow_without_steps_has_no_definition() -> None:
    with pytest.raises(ValueError, match="workflow 'empty' has no steps"):
        to_definition(Workflow("empty"))
