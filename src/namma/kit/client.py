"""Who is calling: the client's address (behind trusted proxies only) and user agent."""

from __future__ import annotations

from fastapi import Request


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """The client's IP address.

    X-Forwarded-For is believed only when the direct peer is a configured proxy; then the
    right-most address that is not itself a trusted proxy is the client (earlier entries can be
    forged by the client).
    """
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return peer


def user_agent(request: Request) -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:400] if agent else None
