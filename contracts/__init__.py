"""The contract of the WaveSpeedAI Ovi API: documents, model registry, validators.

The OpenAPI and JSON Schema files in this package are the one source of truth;
this module loads them once and checks documents against them.

Example:
    >>> from wavespeed_mock.contracts import validate_request
    >>> validate_request("character-ai/ovi/text-to-video", {"prompt": "waves at dawn"})
"""

from __future__ import annotations

from ._formats import format_checker
from ._resources import (
    SCHEMA_BASE_URI,
    load_openapi,
    load_schema,
    schema_names,
    schema_registry,
)
from .catalogue import (
    Catalogue,
    CatalogueError,
    ModelSpec,
    PriceRule,
    builtin_catalogue,
    load_catalogue_file,
)
from .errors import ContractError, UnknownModelError, WavespeedMockError
from .facts import (
    FACT_KEYWORDS,
    BodyLimits,
    SeedRule,
    body_limits,
    did_you_mean,
    image_formats,
    refunded_statuses,
    seed_rule,
    statuses,
    task_errors,
    terminal_statuses,
    upload_limits,
)
from .images import ImageInfo, TooManyPixelsError, UnusableImageError, probe_image
from .outputs import (
    OutputPlan,
    OutputRule,
    kind_for_type,
    plan_inputs,
    plan_json,
    plan_outputs,
    shared_plan,
)
from .registry import (
    get_model,
    is_valid_request,
    iter_request_errors,
    list_models,
    request_schema,
    validate_request,
)
from .validation import (
    CONTROL_PREFIX,
    MOCK_ONLY,
    is_valid,
    is_valid_response,
    iter_errors,
    iter_media_errors,
    iter_response_errors,
    response_schema_name,
    validate,
    validate_response,
)

__all__ = [
    "CONTROL_PREFIX",
    "FACT_KEYWORDS",
    "MOCK_ONLY",
    "SCHEMA_BASE_URI",
    "BodyLimits",
    "Catalogue",
    "CatalogueError",
    "ContractError",
    "ImageInfo",
    "ModelSpec",
    "OutputPlan",
    "OutputRule",
    "PriceRule",
    "SeedRule",
    "TooManyPixelsError",
    "UnknownModelError",
    "UnusableImageError",
    "WavespeedMockError",
    "body_limits",
    "builtin_catalogue",
    "did_you_mean",
    "format_checker",
    "get_model",
    "image_formats",
    "is_valid",
    "is_valid_request",
    "is_valid_response",
    "iter_errors",
    "iter_media_errors",
    "iter_request_errors",
    "iter_response_errors",
    "kind_for_type",
    "list_models",
    "load_catalogue_file",
    "load_openapi",
    "load_schema",
    "plan_inputs",
    "plan_json",
    "plan_outputs",
    "probe_image",
    "refunded_statuses",
    "request_schema",
    "response_schema_name",
    "schema_names",
    "schema_registry",
    "seed_rule",
    "shared_plan",
    "statuses",
    "task_errors",
    "terminal_statuses",
    "upload_limits",
    "validate",
    "validate_request",
    "validate_response",
]
