"""One response against one gold: LUFFY's grader ("luffy"), the same under LUFFY's library pins
("luffy_exact") or plain Math-Verify ("math_verify").

"luffy" reproduces the labels of the grader behind LUFFY's reported numbers (OAT's ``boxed_reward_fn``
with ``fast=False``): the last ``\\boxed{}`` only; then Hendrycks-normalised string equality, then
PRM800K-normalised sympy equality (guarded, see :mod:`luffy_math.safe_sympy`), then Math-Verify on the boxed
content; a list of golds passes if any one does. The boxed content is extracted here, before Math-Verify
sees it, so Math-Verify's own multi-box handling (0.7.0 joined two ``\\boxed{840}`` into 840840, 0.8+ turns
``\\boxed{41} … \\boxed{42}`` into a set) cannot change a label.

"math_verify" is ``verify(parse("$" + gold + "$"), parse(response))`` with Math-Verify's defaults.

"luffy_exact" is the "luffy" pipeline run under math-verify 0.6.0 / latex2sympy2_extended 1.0.9 / sympy 1.13.3
(LUFFY's pins), which label some answers otherwise than this package's versions: in an environment with
those pins it is "luffy"; elsewhere only :mod:`luffy_math.workers` grades it, in workers on that environment's
interpreter (:mod:`luffy_math.pins`), so that this library never starts a process.

Math-Verify's SIGALRM timeouts are switched off (each ends with ``alarm(0)``, which would cancel an outer
bound); bounds come from :mod:`luffy_math.deadline` and, in worker processes, from the kill in
:mod:`luffy_math.workers.pool`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from luffy_math.answer import as_boxed, boxed_answer, last_boxed
from luffy_math.deadline import DeadlineExceeded, call_with_deadline
from luffy_math.normalize import (
    is_plain_fraction,
    mathd_normalize,
    prm_normalize,
    split_tuple,
    str_is_int,
)
from luffy_math.pins import exact_available, no_math_verify_alarms, under_luffy_pins
from luffy_math.repeats import is_repetitive
from luffy_math.safe_sympy import equal_under_sympy

# The grading modes, in report order (the harness records and reports them in this order).
GradeMode = Literal["luffy", "luffy_exact", "math_verify"]
MODES: tuple[str, ...] = get_args(GradeMode)
MODE_NOTES = {
    "luffy": "LUFFY's reported grader (OAT boxed grader)",
    "luffy_exact": "LUFFY's grader under LUFFY's pinned libraries",
    "math_verify": "Math-Verify",
}
# The modes that read only the last \boxed{} of a response.
BOXED_MODES = ("luffy", "luffy_exact")


class _OwnTimeoutsNotice(logging.Filter):
    """Drop Math-Verify's notice that its alarms are off: here that is deliberate (bounds come from us)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_OwnTimeoutsNotice())

# LUFFY gives each Math-Verify call of its last step one second (wall clock there; CPU time here, so that
# a busy machine does not turn right answers wrong).
LUFFY_MATH_VERIFY_SECONDS = 1.0


@dataclass(frozen=True)
class Grade:
    """A label and how it was reached.

    decided_by: the step that accepted the answer ("mathd", "sympy", "math_verify"), or why none did
    ("no_match", "unformatted": no boxed answer / nothing parsable, "timeout", "worker_died").
    formatted: a final answer was found (LUFFY: a closed last ``\\boxed{}``).
    """

    correct: bool
    extracted: str | None
    decided_by: str
    formatted: bool
    timed_out: bool = False


def _golds(gold: str | Sequence[str]) -> list[str]:
    if isinstance(gold, str):
        return [gold]
    if isinstance(gold, (int, float)):
        return [str(gold)]
    return [str(item) for item in gold]


def available_modes() -> tuple[str, ...]:
    """The modes that can be graded here: "luffy_exact" needs the environment with LUFFY's pins."""
    return tuple(mode for mode in MODES if mode != "luffy_exact" or exact_available())


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown grading mode {mode!r}; use one of {', '.join(MODES)}")


def graded_in_process(mode: str) -> bool:
    """Whether :func:`grade` grades ``mode`` in this process: every mode but "luffy_exact" outside LUFFY's pins,
    which needs another interpreter and so :mod:`luffy_math.workers`."""
    return mode != "luffy_exact" or under_luffy_pins()


@functools.cache
def _prepare_math_verify() -> None:
    """Once per process before Math-Verify's first use: under LUFFY's pins switch its alarms off (0.6.0 cannot
    be told to), elsewhere check that the LaTeX parser fits the ANTLR runtime."""
    if under_luffy_pins():
        no_math_verify_alarms()
    else:
        latex_parser_complete()


@functools.cache
def latex_parser_complete() -> bool:
    """False where latex2sympy2_extended's parser for the installed ANTLR runtime is stale.

    latex2sympy2_extended 1.11.0's parser generated for ANTLR 4.9.3 (the runtime verl's hydra/omegaconf pin)
    lacks the newer ``FUNC_GAMMA`` rule, so Math-Verify there fails on percent numbers (``50\\%``) and other
    atoms checked after it. Labels then differ from an environment with ANTLR 4.13.2; say so once.
    """
    from latex2sympy2_extended.antlr_parser import PSParser

    complete = hasattr(PSParser.AtomContext, "FUNC_GAMMA")
    if not complete:
        logging.getLogger(__name__).warning(
            "latex2sympy2_extended's parser for this ANTLR runtime is stale: Math-Verify cannot read percent "
            "numbers here, so some labels differ from an environment with antlr4-python3-runtime 4.13.2")
    return complete


# ---- "luffy": LUFFY's three steps on the boxed answer ---------------------------------------------------


def _sympy_step(given: str, gold: str) -> bool:
    """PRM800K-style: normalised equality, then element-wise sympy for tuples/intervals, with integer and
    unreduced-fraction answers held to literal equality."""
    gold_norm = prm_normalize(gold)
    given_norm = prm_normalize(given)
    if gold_norm == given_norm:
        return True
    if not given_norm:
        return False
    gold_elems = split_tuple(gold_norm)
    given_elems = split_tuple(given_norm)
    if len(gold_elems) > 1 and (gold_norm[0] != given_norm[0] or gold_norm[-1] != given_norm[-1]):
        return False  # interval ends differ: (a,b] is not [a,b]
    if len(gold_elems) != len(given_elems):
        return False
    for gold_elem, given_elem in zip(gold_elems, given_elems, strict=True):
        if is_plain_fraction(gold_elem) and is_plain_fraction(given_elem):
            same = gold_elem == given_elem
        elif str_is_int(gold_elem) != str_is_int(given_elem):
            same = False
        else:
            same = equal_under_sympy(gold_elem, given_elem)
        if not same:
            return False
    return True


def _as_math(text: str) -> str:
    return text if "$" in text else f"${text}$"


def _math_verify_step(given: str, gold: str) -> bool:
    """Math-Verify on the two bare answers, as LUFFY runs it: boxed first, no string fallback, and
    "any_match" extraction (LUFFY passes ``["first_match"]``, a list, which Math-Verify treats as any_match)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    _prepare_math_verify()

    def too_repetitive() -> bool:
        return (len(given) > 128 and is_repetitive(given)) or (len(gold) > 128 and is_repetitive(gold))

    def parse_one(text: str) -> list[Any]:
        return parse(text, extraction_config=(LatexExtractionConfig(boxed_match_priority=0),
                                              ExprExtractionConfig()),
                     fallback_mode="no_fallback", extraction_mode="any_match", parsing_timeout=None)

    try:
        budget = LUFFY_MATH_VERIFY_SECONDS
        if call_with_deadline(budget, too_repetitive, clock="cpu"):
            return False
        gold_parsed = call_with_deadline(budget, parse_one, _as_math(gold), clock="cpu")
        given_parsed = call_with_deadline(budget, parse_one, _as_math(given), clock="cpu")
        return bool(call_with_deadline(budget, lambda: verify(gold_parsed, given_parsed, timeout_seconds=None),
                                       clock="cpu"))
    except DeadlineExceeded:
        return False
    except Exception:  # Math-Verify failing on odd input means "not shown equal", as in LUFFY
        return False


# Answers up to this length are remembered with their verdicts: the samples of one problem mostly box the same
# few answers, and the sympy and Math-Verify steps cost milliseconds each.
MEMO_MAX_CHARS = 512


def luffy_match(given: str, gold: str) -> str | None:
    """Name of the first LUFFY step that accepts ``given`` for ``gold`` (both bare answers), else None."""
    if len(given) + len(gold) <= MEMO_MAX_CHARS:
        return _remembered_luffy_match(given, gold)
    return _luffy_match(given, gold)


@functools.lru_cache(maxsize=8192)
def _remembered_luffy_match(given: str, gold: str) -> str | None:
    """A time limit passing inside raises past the cache, so only finished verdicts are remembered."""
    return _luffy_match(given, gold)


def _luffy_match(given: str, gold: str) -> str | None:
    if "\\boxed" in gold:
        boxed_gold = boxed_answer(gold)
        if boxed_gold is None:
            return None
        gold = boxed_gold
    steps: list[tuple[str, Callable[[str, str], bool]]] = [
        ("mathd", lambda a, b: mathd_normalize(a) == mathd_normalize(b)),
        ("sympy", _sympy_step),
        ("math_verify", _math_verify_step),
    ]
    for name, step in steps:
        if step(given, gold):
            return name
    return None


def _grade_luffy(response: str, golds: list[str]) -> Grade:
    answer = boxed_answer(response)  # LUFFY does not read \fbox
    if answer is None:
        return Grade(correct=False, extracted=None, decided_by="unformatted", formatted=False)
    for gold in golds:
        step = luffy_match(answer, gold)
        if step is not None:
            return Grade(correct=True, extracted=answer, decided_by=step, formatted=True)
    return Grade(correct=False, extracted=answer, decided_by="no_match", formatted=True)


# ---- "math_verify": plain Math-Verify on the whole response ---------------------------------------------


def _grade_math_verify(response: str, golds: list[str]) -> Grade:
    from math_verify import parse, verify

    _prepare_math_verify()
    predicted = parse(response, parsing_timeout=None)
    extracted = None
    if predicted:
        extracted = str(predicted[-1]) if len(predicted) > 1 else str(predicted[0])
    if not predicted:
        return Grade(correct=False, extracted=None, decided_by="unformatted", formatted=False)
    for gold in golds:
        if verify(parse(f"${gold}$", parsing_timeout=None), predicted, timeout_seconds=None):
            return Grade(correct=True, extracted=extracted, decided_by="math_verify", formatted=True)
    return Grade(correct=False, extracted=extracted, decided_by="no_match", formatted=True)


def timed_out_grade(response: str, mode: str) -> Grade:
    """The label of an item that ran out of time: wrong, with the boxed answer if there is one."""
    answer = last_boxed(response, allow_fbox=mode == "math_verify")
    return Grade(correct=False, extracted=answer, decided_by="timeout", formatted=answer is not None,
                 timed_out=True)


def crashed_grade(response: str, mode: str) -> Grade:
    """The label of an item whose worker process died under it (out of memory, a crash in C)."""
    answer = last_boxed(response, allow_fbox=mode == "math_verify")
    return Grade(correct=False, extracted=answer, decided_by="worker_died", formatted=answer is not None)


def grading_key(response: str, gold: str | list[str], mode: str) -> tuple[str | None, tuple[str, ...]]:
    """Everything a label depends on: items with equal keys get equal Grades, so bulk grading grades each
    key once. In the "luffy" modes that is the last boxed answer (the rest of the response is never read); in
    "math_verify" mode, the whole response."""
    answer = boxed_answer(response) if mode in BOXED_MODES else response
    return answer, tuple(_golds(gold))


def grade(response: str, gold: str | list[str], mode: GradeMode = "luffy", timeout: float | None = 10.0) -> Grade:
    """Grade one response against a gold answer (or any of a list of them), in this process.

    The timeout (seconds; None for none) is a signal-based bound that works on the main thread only; for a
    hard bound (and for threads) use :func:`luffy_math.workers.grade_many` or
    :class:`luffy_math.workers.GradingPool`. "luffy_exact" outside LUFFY's pinned environment is refused
    (ValueError): it is graded on that environment's interpreter, which only :mod:`luffy_math.workers` starts
    (:func:`luffy_math.workers.grade_one` grades one item in any mode).
    """
    check_mode(mode)
    if not graded_in_process(mode):
        raise ValueError(f"grading mode {mode!r} runs on the interpreter with LUFFY's pinned libraries, not in this "
                         "process: grade it with luffy_math.workers (grade_one, grade_many or GradingPool)")
    golds = _golds(gold)
    impl = _grade_math_verify if mode == "math_verify" else _grade_luffy
    try:
        return call_with_deadline(timeout, impl, response, golds)
    except DeadlineExceeded:
        return timed_out_grade(response, mode)


def grade_answer(answer: str, gold: str | list[str], mode: GradeMode = "luffy",
                 timeout: float | None = 10.0) -> Grade:
    """Grade a bare answer (``42``, not a response that boxes it): :func:`grade` of ``\\boxed{answer}``."""
    return grade(as_boxed(answer), gold, mode=mode, timeout=timeout)
