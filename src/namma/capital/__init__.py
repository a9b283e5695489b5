"""Capital: owners' investments, borrowings (with a money-core schedule) and their repayments,
and capital utilisation. See docs/capital.md."""
