"""The built-in catalogue as module functions, and request checks by model id.

The models are data (``models/*.json``, see :mod:`.catalogue`); a server may
serve more (its own :class:`~.catalogue.Catalogue`). These functions answer for
the built-in catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .catalogue import ModelSpec, builtin_catalogue
from .errors import ContractError

__all__ = [
    "get_model",
    "is_valid_request",
    "iter_request_errors",
    "list_models",
    "request_schema",
    "validate_request",
]


def list_models() -> list[ModelSpec]:
    """Every built-in model, in catalogue order (Ovi first)."""
    return list(builtin_catalogue())


def get_model(model_id: str) -> ModelSpec:
    """The built-in model with this id.

    Raises:
        UnknownModelError: naming the closest known ids.
    """
    return builtin_catalogue().get(model_id)


def request_schema(
    model: str, *, strict: bool = False, inlined: bool = False
) -> dict[str, Any]:
    """The JSON Schema a model's request body is checked against.

    ``strict``: as the real API promises it (no unknown fields, no mock-only
    conveniences). ``inlined`` is accepted for compatibility: the schema
    returned never holds a ``$ref`` to another file when it is set.
    """
    spec = get_model(model)
    if inlined:
        return spec.validation_schema(strict=strict)
    return spec.declared_schema(strict=strict)


def iter_request_errors(
    model: str, body: Any, *, strict: bool = False
) -> Iterator[ContractError]:
    """Every violation in a submit body for ``model``."""
    return get_model(model).request_errors(body, strict=strict)


def is_valid_request(model: str, body: Any, *, strict: bool = False) -> bool:
    return next(iter_request_errors(model, body, strict=strict), None) is None


def validate_request(model: str, body: Any, *, strict: bool = False) -> None:
    """Check a submit body for ``model``.

    Example:
        >>> validate_request("character-ai/ovi/text-to-video", {"prompt": "waves"})

    Raises:
        UnknownModelError: the model is not in the catalogue.
        ContractError: the body breaks the model's input schema; ``error.path``
            names the field.
    """
    get_model(model).validate(body, strict=strict)
