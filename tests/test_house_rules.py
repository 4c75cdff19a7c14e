"""Rules written once (ARCHITECTURE.md, "Each rule in one place"), tested where they live."""

from __future__ import annotations

from decimal import Decimal

from extractor._canonical import canonical, canonical_key, exact_number
from extractor.client.attempts import annotate
from extractor.documents import merge_results
from extractor.errors import (
    APIConnectionError,
    AuthenticationError,
    EndpointUnreachableError,
    OutputInvalidError,
    PaymentRequiredError,
)
from extractor.quality.evaluate import normalise_text
from extractor.results import Usage
from extractor.runs.faults import FAULTS_IN_A_ROW, StopRule, fault_kind

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"


def test_numbers_are_the_same_by_their_exact_value_in_both_readings() -> None:
    for a, b in [(1, 1.0), (1, Decimal("1.00")), (0.1, Decimal("0.1")), (10**30, Decimal("1E+30"))]:
        assert canonical_key(a) == canonical_key(b)
        assert canonical_key(a, text=normalise_text) == canonical_key(b, text=normalise_text)
    assert canonical_key(True) != canonical_key(1)  # a boolean is never a number
    assert canonical_key(9007199254740993) != canonical_key(9007199254740992.0)
    assert exact_number(float("inf")) is None and exact_number(Decimal("1e999")) is None


def test_the_strict_reading_keeps_text_order_and_empty_values_the_loose_one_drops_them() -> None:
    a = {"name": "ACME  Corp", "items": [1, 2], "note": None}
    b = {"name": "acme corp", "items": [2, 1]}
    assert canonical(a) != canonical(b)
    assert canonical(a, text=normalise_text) == canonical(b, text=normalise_text)


def test_the_merge_of_parts_uses_the_strict_reading() -> None:
    same = merge_results([{"total": 1, "currency": "EUR"}, {"total": 1.0, "currency": "EUR"}])
    assert same.conflicts == {}
    differ = merge_results([{"currency": "EUR"}, {"currency": "eur"}])
    assert set(differ.conflicts) == {"$.currency"}  # a case change is a different value when merging


def test_annotate_gives_an_error_its_cost_and_redacts_every_run_of_the_key() -> None:
    error = OutputInvalidError(f"bad answer quoting {KEY[:20]}", raw=f'{{"key": "{KEY[5:30]}"}}')
    usage = Usage(prompt_tokens=10, completion_tokens=5)
    annotated = annotate(error, [], usage, KEY)
    assert annotated is error and annotated.usage == usage and annotated.attempts == []
    assert KEY[:20] not in str(annotated) and "***" in str(annotated)
    assert annotated.raw is not None and KEY[5:30] not in annotated.raw


def test_one_stop_rule_for_the_runner_and_ray() -> None:
    assert fault_kind(AuthenticationError("401")) == "at_once"
    assert fault_kind(PaymentRequiredError("402")) == "at_once"
    assert fault_kind(EndpointUnreachableError("cannot reach")) == "fault"
    assert fault_kind(APIConnectionError("dropped")) is None  # the input's own (transient) failure
    rule = StopRule()
    assert rule.fault("fault") is True  # before any success, the first run-level fault stops the run
    rule = StopRule()
    rule.success()
    assert [rule.fault("fault") for _ in range(FAULTS_IN_A_ROW)] == [False] * (FAULTS_IN_A_ROW - 1) + [True]
    rule = StopRule()
    rule.success()
    rule.fault("fault")
    rule.success()  # a success in between: the count starts again
    assert rule.fault("fault") is False
    assert rule.fault("at_once") is True
