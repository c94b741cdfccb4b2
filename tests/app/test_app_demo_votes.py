"""The demo says when a vote ties: the tied answers with their counts, and which one the tie rule takes."""

from __future__ import annotations

import asyncio

from app.client import Completion, Endpoint, Sample
from app.demo import answer_summary, grade_summary
from luffy_math.vote import TIE, Majority


def samples(*answers: str) -> list[Sample]:
    return [Sample(reasoning="hmm", content=f"So $\\boxed{{{a}}}$.", finish_reason="stop") for a in answers]


def test_a_tie_is_said_with_its_counts() -> None:
    tie = Completion(samples=samples("24", "42"))  # no server fields: the client votes by the same rule
    summary = answer_summary(tie)
    assert summary.startswith("**Tie: no majority** among 2 samples: `24` (1), `42` (1) share the most votes")
    assert "the first seen, $\\boxed{24}$, is taken" in summary
    clear = answer_summary(Completion(samples=samples("42", "24", "42")))
    assert clear.startswith("**Majority answer** (2 of 3 samples): $\\boxed{42}$") and "Tie" not in clear


def test_the_server_vote_is_what_the_demo_shows() -> None:
    """The server's majority_* fields win over the client's own vote (the server counts equivalent answers
    together: 1/2 and 0.5 here)."""
    completion = Completion(samples=samples("1/2", "0.5", "3", "3"), server_majority="1/2",
                            server_vote=Majority("1/2", TIE, {"1/2": 2, "3": 2}))
    assert "`1/2` (2), `3` (2) share the most votes" in answer_summary(completion)


def test_grading_a_tie_on_the_server(luffy_server) -> None:
    """/v1/grade's vote on a 24-42 split comes back as a tie, and the grade line says the tie decided it."""
    endpoint = Endpoint(luffy_server.base_url, api_key=luffy_server.api_key, model=luffy_server.model)
    completion = Completion(samples=samples("24", "42"))
    report = asyncio.run(endpoint.grade([s.content for s in completion.samples], "42"))
    assert report.by_server and report.majority == Majority("24", TIE, {"24": 1, "42": 1})
    line = grade_summary(report, completion, "42")
    assert line.startswith("**Majority incorrect** (a tie, decided by the first seen of the tied answers)")
    assert "1 of 2 samples correct" in line
