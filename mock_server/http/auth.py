"""Bearer authentication, as the API does it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core.keys import bearer_key
from ..errors import ApiError

__all__ = ["Authenticator", "KeyedEndpoint", "require_api_key"]

KeyedEndpoint = Callable[[Request, str], Awaitable[Response]]
"""An endpoint of the API that takes the request's API key, checked before it runs."""


def require_api_key(request: Request, accepted: frozenset[str]) -> str:
    """The request's API key.

    Any non-empty key is accepted unless ``accepted`` names the keys.

    Raises:
        ApiError: 401 for a missing, empty, malformed or unknown key.
    """
    key = bearer_key(request.headers.get("authorization", ""))
    if not key:
        raise ApiError(
            401,
            "Unauthorized: invalid authentication. Send 'Authorization: Bearer <API key>'.",
        )
    if accepted and key not in accepted:
        raise ApiError(401, "Unauthorized: invalid API key")
    return key


class Authenticator:
    """The Bearer check of one server, handed to every route that needs a key."""

    def __init__(self, accepted: frozenset[str] | tuple[str, ...] = ()) -> None:
        self.accepted = frozenset(accepted)

    def __call__(self, request: Request) -> str:
        """The request's API key (401 in the envelope when it has none)."""
        return require_api_key(request, self.accepted)

    def routes(
        self, table: Sequence[tuple[str, KeyedEndpoint, str]]
    ) -> list[BaseRoute]:
        """Routes of ``(path, endpoint, method)`` whose endpoints get the checked
        API key: authentication declared once for a feature's API routes."""

        def keyed(endpoint: KeyedEndpoint) -> Callable[[Request], Awaitable[Response]]:
            async def checked(request: Request) -> Response:
                return await endpoint(request, self(request))

            checked.__name__ = getattr(endpoint, "__name__", "endpoint")
            return checked

        return [
            Route(path, keyed(endpoint), methods=[method])
            for path, endpoint, method in table
        ]
