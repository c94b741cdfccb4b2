"""The dispatch rules both multi-target backends share, on targets made of plain coroutines (no engine, no
network): fewest in flight, failover, a retired target, giving up, and an error that is the request's own."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.samplers.base import Completion, SampleRequest
from benchmarks.samplers.dispatch import Dispatcher, NoTargetLeft, Target


class Down(Exception):
    """What a dead target raises."""


def requests(count: int) -> list[SampleRequest]:
    return [SampleRequest(("b", str(i), 0), f"q{i}", i) for i in range(count)]


def completion(request: SampleRequest) -> Completion:
    return Completion(request.key, "text", "stop", 1, 1, None)


def dispatch(targets: list[Target], attempt, count: int, capacity: int = 2, give_up_after: int = 5,
             on_failure=None) -> list[Completion]:
    done: list[Completion] = []
    dispatcher = Dispatcher(targets, capacity, give_up_after, attempt, lambda e: isinstance(e, Down), on_failure)
    asyncio.run(dispatcher.run(requests(count), done.append))
    return done


def test_each_request_goes_to_the_target_with_the_fewest_in_flight() -> None:
    peak: dict[str, int] = {}

    async def attempt(target: Target, request: SampleRequest) -> Completion:
        peak[target.name] = max(peak.get(target.name, 0), target.in_flight)
        await asyncio.sleep(0.01 if target.name == "fast" else 0.05)
        return completion(request)

    targets = [Target("slow"), Target("fast")]
    done = dispatch(targets, attempt, 40, capacity=3)
    assert sorted(c.key for c in done) == sorted(r.key for r in requests(40))
    assert peak == {"slow": 3, "fast": 3}  # never over capacity
    assert targets[1].served > targets[0].served  # the one that frees its slots sooner gets more
    assert {c.endpoint for c in done} == {"slow", "fast"}


def test_a_failing_target_is_left_out_and_its_requests_move() -> None:
    attempts: list[str] = []

    async def attempt(target: Target, request: SampleRequest) -> Completion:
        attempts.append(target.name)
        await asyncio.sleep(0.001)
        if target.name == "dead":
            raise Down()
        return completion(request)

    targets = [Target("dead"), Target("live")]
    done = dispatch(targets, attempt, 12)
    assert sorted(c.key for c in done) == sorted(r.key for r in requests(12))  # each once
    assert {c.endpoint for c in done} == {"live"}
    assert attempts.count("dead") <= 2  # tried by the first requests, then resting (5 s) for the rest
    assert targets[0].failures_in_a_row >= 1 and targets[0].resting_until > 0


def test_a_retired_target_takes_nothing_and_none_left_is_an_error() -> None:
    async def attempt(target: Target, request: SampleRequest) -> Completion:
        raise Down()

    holder: dict[str, Dispatcher] = {}

    def retire(target: Target) -> None:
        target.resting_until = float("inf")
        asyncio.get_running_loop().create_task(holder["d"].retire(target))

    targets = [Target("a"), Target("b")]
    dispatcher = Dispatcher(targets, 2, 100, attempt, lambda e: isinstance(e, Down), retire)
    holder["d"] = dispatcher
    with pytest.raises(NoTargetLeft):
        asyncio.run(dispatcher.run(requests(4), lambda c: None))
    assert all(t.gone for t in targets)


def test_a_request_that_fails_everywhere_gives_up_after_its_count() -> None:
    tries = [0]

    async def attempt(target: Target, request: SampleRequest) -> Completion:
        tries[0] += 1
        raise Down()

    def restore_at_once(target: Target) -> None:  # never rest: the count alone must end it
        pass

    with pytest.raises(Down) as error:
        dispatch([Target("a"), Target("b")], attempt, 1, give_up_after=3, on_failure=restore_at_once)
    assert tries[0] == 3
    assert error.value.luffy_target in ("a", "b")  # type: ignore[attr-defined]


def test_an_error_of_the_request_itself_stops_the_run_without_failover() -> None:
    seen: list[str] = []

    async def attempt(target: Target, request: SampleRequest) -> Completion:
        seen.append(target.name)
        if request.key[1] == "3":
            raise ValueError("prompt too long")
        await asyncio.sleep(0.2)
        return completion(request)

    targets = [Target("a"), Target("b")]
    with pytest.raises(ValueError, match="prompt too long"):
        dispatch(targets, attempt, 8, capacity=4)
    assert all(t.failures_in_a_row == 0 and t.resting_until == 0 for t in targets)  # no target blamed
    assert all(t.in_flight == 0 for t in targets)  # the others were cancelled and handed back
