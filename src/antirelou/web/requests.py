"""Reading provider requests safely: size limits, content types, form decoding."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import HTTPException, Request


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused early (413) when it is larger than any real webhook."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
    return bytes(body)


def parse_form(request: Request, body: bytes) -> list[tuple[str, str]]:
    """Decode an application/x-www-form-urlencoded body, keeping empty values.

    Empty values matter: Twilio signs `ToCity=` too.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise HTTPException(415, "expected application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, f"malformed form body: {exc}") from None


def public_url_of(request: Request, public_base: str) -> str:
    """The URL the provider called, as seen from outside (behind any proxy).

    Signatures cover the public URL, not the one our socket saw: a proxy changes scheme,
    host and port. `public_url` is the operator's word on what the outside sees.
    """
    url = public_base + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url
