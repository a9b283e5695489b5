"""Messages to customers: repayment reminders, overdue notices, receipts, loan notices."""
