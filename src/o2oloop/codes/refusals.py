"""How the codes room says no: one uniform answer outside, the precise reason inside."""

from __future__ import annotations

from o2oloop.errors import ProblemError, RuleViolation
from o2oloop.offers.rules import Violation


class CodeRejected(ProblemError):
    """The one answer the outside gets for unknown, foreign, forged and used codes."""

    status, slug, title = 422, "code-rejected", "Code rejected"

    def __init__(self) -> None:
        super().__init__("this code cannot be redeemed here")


class Refused(Exception):
    """A refused attempt: `public` goes to the caller, `reason` to the merchant's log."""

    def __init__(self, public: ProblemError, reason: str) -> None:
        super().__init__(reason)
        self.public = public
        self.reason = reason


def broken_rules(violations: list[Violation]) -> RuleViolation:
    """Every broken rule in one problem, each with its stable rule name."""
    return RuleViolation(
        "; ".join(v.reason for v in violations),
        violations=[{"rule": v.rule, "reason": v.reason} for v in violations],
    )


def refused_for(violations: list[Violation]) -> Refused:
    """A counter refusal that tells the caller and the merchant's log every broken rule."""
    return Refused(broken_rules(violations), "; ".join(v.reason for v in violations))
