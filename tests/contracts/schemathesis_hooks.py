"""schemathesis hooks for test_schemathesis.py (``SCHEMATHESIS_HOOKS``).

Two rules of a submit that a JSON Schema cannot state, and the only 400s of a
schema-valid submit forgiven; every other refusal stays a failure:

- base64 outputs together with a webhook are refused
  (https://wavespeed.ai/docs/base64-output); the webhook may come in the query
  (``?webhook=``) or the body (``webhook_url``), and one schema cannot span both;
- a ``data:`` image is decoded: bytes that are no image of the contract's formats
  are refused naming ``$.image`` (the one image rule, docs/api-surface.md).
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    query = case.query if isinstance(case.query, dict) else {}
    if response.status_code != 400:
        return True
    base64_with_webhook = body.get("enable_base64_output") is True and bool(
        body.get("webhook_url") or query.get("webhook")
    )
    image = body.get("image")
    unusable_data_image = (
        isinstance(image, str)
        and image.startswith("data:")
        and "$.image" in response.text
    )
    return not (base64_with_webhook or unusable_data_image)  # False drops it
