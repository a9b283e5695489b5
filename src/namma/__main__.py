"""`python -m namma` is the `namma` command."""

from namma.cli import app

app(prog_name="namma")
