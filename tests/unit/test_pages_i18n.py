"""The pages' languages: every string the pages can show has a Kannada translation (not fuzzy,
the same placeholders), and amounts and dates are written the Indian way in both languages."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from starlette.requests import Request

from namma.web import i18n
from namma.web.catalogue import catalogue_extract
from namma.web.templating import page_path

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
# What is left of a string once its named placeholders and escaped percent signs are gone: a
# ``%`` there is a bare one.
FORMATTING = re.compile(r"%\(\w+\)[sd]|%%")


def _ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return (message_id,) if isinstance(message_id, str) else tuple(message_id)


def test_every_page_string_is_translated_into_kannada() -> None:
    from babel.messages.pofile import read_po

    with i18n.catalogue_path("kn").open("rb") as po:
        kannada = read_po(po, locale="kn_IN")
    extracted = [m for m in catalogue_extract() if m.id]
    assert len(extracted) > 250  # the extraction found the templates and the Python strings
    missing, fuzzy, wrong_placeholders = [], [], []
    for message in extracted:
        found = kannada.get(message.id)
        strings = () if found is None else _ids(found.string)
        if found is None or not strings or not all(s.strip() for s in strings):
            missing.append(message.id)
            continue
        if found.fuzzy:
            fuzzy.append(message.id)
        expected = {p for text in _ids(message.id) for p in PLACEHOLDER.findall(text)}
        if any(set(PLACEHOLDER.findall(s)) != expected for s in strings):
            wrong_placeholders.append(message.id)
    assert not missing, f"untranslated in Kannada (python -m namma.web.catalogue): {missing}"
    assert not fuzzy, f"fuzzy in Kannada: {fuzzy}"
    assert not wrong_placeholders, f"placeholders differ: {wrong_placeholders}"


def test_a_page_string_formats_as_the_templates_format_it_in_both_languages() -> None:
    """Jinja's new-style gettext %-formats every template string, even with no variables, so a
    bare ``%`` in one (English or Kannada) makes that page fail to render: a template string
    writes ``%%`` or words. A Python string is formatted by its caller, so there the Kannada
    must only keep the English's bare signs."""
    from babel.messages.pofile import read_po
    from markupsafe import Markup

    with i18n.catalogue_path("kn").open("rb") as po:
        kannada = read_po(po, locale="kn_IN")
    unformattable, bare_differs = [], []
    for message in catalogue_extract():
        found = kannada.get(message.id) if message.id else None
        if found is None:
            continue  # the test above reports it
        english, translated = _ids(message.id), _ids(found.string)
        if any(path.startswith("templates/") for path, _line in message.locations):
            values = {p: "1" for text in english for p in PLACEHOLDER.findall(text)}
            for text in english + translated:
                # "% a" formats without an error (as the dict's repr): no bare sign at all.
                if "%" in FORMATTING.sub("", text):
                    unformattable.append(f"{text!r}: a bare %")
                    continue
                try:
                    Markup(text) % values
                except (ValueError, TypeError, KeyError) as error:
                    unformattable.append(f"{text!r}: {error}")
        bare = {FORMATTING.sub("", text).count("%") for text in english + translated}
        if len(bare) > 1:
            bare_differs.append(message.id)
    assert not unformattable, f"template strings that do not format: {unformattable}"
    assert not bare_differs, f"bare % signs differ between English and Kannada: {bare_differs}"


def test_a_kannada_page_string_is_kannada_and_english_is_the_source() -> None:
    i18n.language_use("kn")
    try:
        assert i18n.gettext("My loans") == "ನನ್ನ ಸಾಲಗಳು"
        assert i18n.ngettext("%(num)d loan", "%(num)d loans", 3) % {"num": 3} == "3 ಸಾಲಗಳು"
    finally:
        i18n.language_use("en")
    assert i18n.gettext("My loans") == "My loans"


@pytest.mark.parametrize("lang", ["en", "kn"])
@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("123456", "₹1,23,456.00"),
        ("12345678.5", "₹1,23,45,678.50"),
        ("999.99", "₹999.99"),
        ("0", "₹0.00"),
        ("-1050.25", "-₹1,050.25"),
        ("100000000000", "₹1,00,00,00,00,000.00"),
    ],
)
def test_amounts_group_in_lakhs_and_crores_in_both_languages(
    lang: str, amount: str, shown: str
) -> None:
    assert i18n.money(Decimal(amount), lang) == shown
    assert i18n.money(amount, lang) == shown  # the API's money strings too


def test_dates_are_day_month_year_with_the_month_named_in_the_language() -> None:
    day = dt.date(2026, 11, 25)
    assert i18n.date(day, "en") == "25-Nov-2026"
    assert i18n.date("2026-11-25", "en") == "25-Nov-2026"
    assert i18n.date(day, "kn") == "25-ನವೆಂ-2026"
    # Three letters for every English month (en_IN's own abbreviation of September is "Sept").
    assert [i18n.date(dt.date(2026, m, 7), "en")[3:-5] for m in range(1, 13)] == [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    ]  # fmt: skip
    assert i18n.month("2026-10", "en") == "October 2026"
    assert i18n.month("2026-10", "kn") == "ಅಕ್ಟೋಬರ್ 2026"
    assert i18n.date(None) == "—" and i18n.money(None) == "—"


def test_a_moment_is_shown_as_its_day_in_india() -> None:
    """20:00 UTC on 25 November is 01:30 on the 26th in India: the day shown is the 26th."""
    late = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)
    assert i18n.date(late, "en") == "26-Nov-2026"
    assert i18n.date(late.isoformat(), "en") == "26-Nov-2026"  # as the API writes it
    assert i18n.date("2026-11-25T20:00:00Z", "en") == "26-Nov-2026"
    assert i18n.date(dt.datetime(2026, 11, 25, 20, 0), "en") == "26-Nov-2026"  # naive: UTC
    assert i18n.date(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC), "en") == "25-Nov-2026"


def test_a_moment_of_the_day_is_its_hour_and_minute_in_india() -> None:
    """When a dashboard's figures were read (D-221): 16:35 UTC is 22:05 in India."""
    moment = dt.datetime(2026, 12, 7, 16, 35, 42, tzinfo=dt.UTC)
    for lang in ("en", "kn"):
        assert i18n.time_of_day(moment, lang) == "22:05"
        assert i18n.time_of_day("2026-12-07T22:05:42+05:30", lang) == "22:05"
    assert i18n.time_of_day(dt.datetime(2026, 12, 7, 16, 35), "en") == "22:05"  # naive: UTC
    assert i18n.time_of_day(None) == "—"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("kn-IN,kn;q=0.9,en;q=0.8", "kn"),
        ("en-IN,en;q=0.9,kn;q=0.8", "en"),
        ("kn", "kn"),
        ("hi-IN,hi;q=0.9", "en"),
        ("fr;q=0.9,kn;q=0.5", "kn"),
        ("en;q=0.2,kn;q=0.8", "kn"),
        ("garbage;;q=x", "en"),
    ],
)
def test_accept_language_picks_kannada_or_english(header: str | None, lang: str) -> None:
    assert i18n.language_negotiate(header) == lang


def _request(method: str, path: str, referer: str | None = None) -> Request:
    headers = [(b"host", b"namma.test")]
    if referer is not None:
        headers.append((b"referer", referer.encode()))
    return Request(
        {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}
    )


def test_the_language_switch_returns_to_the_page_the_form_was_on() -> None:
    """After a form's answer (a POST showing its errors), switching the language must not send
    the person to the form's address, which may answer only POST (it did: 405)."""
    assert page_path(_request("GET", "/agent/sheet")) == "/agent/sheet"
    shown_again = _request("POST", "/agent/collect", referer="http://namma.test/agent/loans/7")
    assert page_path(shown_again) == "/agent/loans/7"
    assert page_path(_request("POST", "/agent/collect", referer="http://elsewhere.test/x")) == "/"
    assert page_path(_request("POST", "/agent/collect")) == "/"
