"""Delivery channels: e-mail over SMTP, and SMS through a provider.

- **E-mail** goes to the configured SMTP server with aiosmtplib (asyncio, no dependencies):
  ``NAMMA_SMTP_HOST`` / ``_PORT`` / ``_FROM`` / ``_USERNAME`` / ``_PASSWORD`` / ``_STARTTLS``.
  Port 465 means TLS from the first byte; otherwise ``smtp_starttls`` requires STARTTLS.
- **SMS** goes through an ``SmsProvider``, chosen by ``NAMMA_SMS_PROVIDER``. The only one
  shipped, ``log``, writes the message to the log (development, or until a gateway is
  contracted); a gateway is a class with the same ``send`` added to ``SMS_PROVIDERS``.

A channel raises on failure; the delivery job records the error and retries, unless the
server refused the message for good (``delivery_refused``).
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import structlog

from namma.config import Settings

log = structlog.get_logger(__name__)

SMTP_TIMEOUT_SECONDS = 15.0


class ChannelNotConfiguredError(RuntimeError):
    """The channel a message was recorded for is not configured any more."""


def delivery_refused(exc: Exception) -> bool:
    """Whether the mail server refused this message for good: a 5xx answer for its recipient
    (no such mailbox) or its content. Retrying cannot deliver it. A refused sender or login
    (our configuration, fixed by an operator), any 4xx and any connection failure is retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(500 <= r.code < 600 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return 500 <= exc.code < 600
    return False


class SmsProvider(Protocol):
    """Sends one text message; raises if the provider did not accept it."""

    name: str

    async def send(self, *, to: str, body: str) -> None: ...


def _masked(phone: str) -> str:
    return "X" * max(len(phone) - 4, 0) + phone[-4:]


class LoggingSmsProvider:
    """Writes each SMS to the log instead of sending it (the default)."""

    name = "log"

    async def send(self, *, to: str, body: str) -> None:
        log.info("sms.sent", provider=self.name, to=_masked(to), body=body)


SMS_PROVIDERS: dict[str, Callable[[Settings], SmsProvider]] = {
    "log": lambda settings: LoggingSmsProvider(),
}


def sms_provider(settings: Settings) -> SmsProvider:
    try:
        return SMS_PROVIDERS[settings.sms_provider](settings)
    except KeyError:
        raise ChannelNotConfiguredError(f"unknown SMS provider {settings.sms_provider!r}") from None


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    username: str | None
    password: str | None
    starttls: bool
    timeout: float = SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer | None:
        """The mailer, or None when e-mail is not configured (no ``smtp_host``)."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )

    def message(self, *, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        domain = email.utils.parseaddr(self.sender)[1].rpartition("@")[2] or None
        message["Message-ID"] = email.utils.make_msgid(domain=domain)
        message.set_content(body)  # UTF-8 (Kannada) is encoded as needed
        return message

    async def send(self, *, to: str, subject: str, body: str) -> None:
        implicit_tls = self.port == 465
        await aiosmtplib.send(
            self.message(to=to, subject=subject, body=body),
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=implicit_tls,
            start_tls=False if implicit_tls else self.starttls,
            timeout=self.timeout,
        )
