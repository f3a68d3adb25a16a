"""The dashboard's cookies, set one way: HttpOnly, and Secure whenever the public address
is https (where their names carry the __Host- prefix: no Domain, Path=/, cannot be planted
by a sibling site)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from starlette.responses import Response

from antirelou.service import Service


def secure(service: Service) -> bool:
    return service.settings.public_base.startswith("https")


def set_private(
    response: Response,
    service: Service,
    name: str,
    value: str,
    lasts: timedelta,
    *,
    path: str = "/",
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """Hand the browser a cookie no script can read."""
    response.set_cookie(
        name,
        value,
        max_age=int(lasts.total_seconds()),
        httponly=True,
        samesite=samesite,
        secure=secure(service),
        path=path,
    )
