"""Errors raised by the money core.

Every error names the field it is about, so the web layer can answer 422 with the field and the
reason, and the CLI can name the option. A single `TermsError` can carry several problems at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input: `field` is the attribute name, `message` is for people."""

    field: str
    message: str


class FinanceError(ValueError):
    """Base class: a request the money core refuses, with the field and the reason."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        if not errors:
            raise ValueError("a FinanceError needs at least one FieldError")
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> FinanceError:
        return cls([FieldError(field, message)])

    @property
    def field(self) -> str:
        """The field of the first problem."""
        return self.errors[0].field

    @property
    def message(self) -> str:
        """The message of the first problem."""
        return self.errors[0].message


class TermsError(FinanceError):
    """Loan terms (or the dates given with them) are invalid."""


class AllocationError(FinanceError):
    """A payment cannot be allocated (for example, it exceeds the dues and excess is refused)."""


class PayoffError(FinanceError):
    """A payoff quote cannot be given (for example, a prepayment penalty on a microfinance loan)."""
