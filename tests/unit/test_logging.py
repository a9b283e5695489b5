"""The log lines: an error's traceback in the development renderer names the frames and the
error, never the frames' local variables (a password or a token may be one of them)."""

from __future__ import annotations

import io
import logging
import sys

import pytest
import structlog

from namma.kit.logging import logging_configure


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_logged_error_shows_where_it_happened_but_not_the_local_variables(
    json_lines: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logging_configure(json_lines=json_lines)

        def sign_in() -> None:
            # Built at run time: the traceback shows source lines, which must not be the leak.
            password = "-".join(["never", "in", "a", "log", "7431"])
            raise ValueError(f"bad input of length {len(password)}")

        try:
            sign_in()
        except ValueError:
            structlog.get_logger("test").exception("sign_in.failed")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
    written = stream.getvalue()
    assert "sign_in.failed" in written
    assert "bad input of length 19" in written
    assert "sign_in" in written  # the frame is named
    assert "never-in-a-log-7431" not in written
