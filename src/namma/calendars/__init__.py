"""Working calendars: holidays and non-working weekdays, institution-wide and per branch."""
