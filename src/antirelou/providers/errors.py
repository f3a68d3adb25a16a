"""Errors shared by every provider adapter.

They live apart from any one adapter so that the web layer can catch a single type and
answer every provider's malformed webhook the same way, whichever adapter parsed it.
"""

from __future__ import annotations


class MalformedRequest(ValueError):
    """A webhook that cannot be interpreted: missing, empty or nonsensical parameters.

    `reason` is meant for logs and for the 400 answer: it names the offending parameter but
    never repeats a secret. It is a ValueError so that code which only knows "bad input"
    still catches it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
