"""Which failures stop a run, in one place for the local runner and Ray's shared actor.

A *run-level fault* says that no input can succeed (`run_fault`): a rejected key (401), no credits
(402), an endpoint that cannot be reached, a wrong URL or model (404). The account's faults (401, 402)
stop the run at once; any other stops it at once while no input has succeeded yet, and after
`FAULTS_IN_A_ROW` in a row once some have (`StopRule`). The inputs not yet sent then come back
stopped (`RunStoppedError`, with `stop_message`), to be run next time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import (
    AuthenticationError,
    EndpointUnreachableError,
    ExtractorError,
    NotFoundError,
    PaymentRequiredError,
)

__all__ = ["FAULTS_IN_A_ROW", "FaultKind", "StopRule", "fault_kind", "run_fault", "stop_message"]

#: run-level faults in a row that stop a run once some input has succeeded (before that, the first does)
FAULTS_IN_A_ROW = 3
#: "at_once": about the account (401, 402); "fault": another run-level fault
FaultKind = Literal["at_once", "fault"]


def run_fault(error: BaseException) -> bool:
    """Whether `error` says no input can succeed: a rejected key (401), no credits (402), an endpoint
    that cannot be reached, or a wrong URL or model (404)."""
    return isinstance(error, AuthenticationError | PaymentRequiredError | EndpointUnreachableError | NotFoundError)


def fault_kind(error: BaseException) -> FaultKind | None:
    """What kind of run-level fault `error` is, or None when it is the input's own failure."""
    if not run_fault(error):
        return None
    return "at_once" if isinstance(error, AuthenticationError | PaymentRequiredError) else "fault"


@dataclass
class StopRule:
    """Counts a run's outcomes and says when its run-level faults stop it."""

    successes: int = 0
    faults: int = 0

    def fault(self, kind: FaultKind) -> bool:
        """A run-level fault of `kind` happened: whether the run stops now."""
        self.faults += 1
        return kind == "at_once" or self.successes == 0 or self.faults >= FAULTS_IN_A_ROW

    def success(self) -> None:
        """An input succeeded: the faults in a row start again from none."""
        self.successes += 1
        self.faults = 0


def stop_message(error: ExtractorError, base_url: str) -> str:
    """One line saying why a run stopped and what to check."""
    if isinstance(error, AuthenticationError):
        return f"{error} (the API key was refused: check EXTRACTOR_API_KEY or OPENROUTER_API_KEY, and --base-url)"
    if isinstance(error, PaymentRequiredError):
        return f"{error} (the account cannot pay for requests: add credits or use another key)"
    if isinstance(error, NotFoundError):
        return f"{error} (check --base-url, now {base_url}, and --model)"
    return str(error)
