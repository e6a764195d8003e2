"""Bearer authentication, as the API does it."""

from __future__ import annotations

from starlette.requests import Request

from ..core.keys import bearer_key
from ..errors import ApiError

__all__ = ["Authenticator", "require_api_key"]


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
