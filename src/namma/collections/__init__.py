"""Collections and servicing: recording repayments (idempotent, under the loan's row lock),
reversing them, and pre-closure quotes. See docs/collections.md."""
