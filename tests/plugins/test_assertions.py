"""assert_conforms: a failure names the JSON path, the rule and the value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from wavespeed_mock.contracts import WavespeedMockError
from wavespeed_mock.plugins import ContractViolation, assert_conforms

RESULT = "/api/v3/predictions/0f8e2b6c1d4a4e7f9a3b5c6d7e8f9012/result"


def envelope(**data: Any) -> dict[str, Any]:
    prediction = {
        "id": "0f8e2b6c1d4a4e7f9a3b5c6d7e8f9012",
        "status": "processing",
        "outputs": [],
        "created_at": "2026-09-01T10:00:00.123Z",
        "error": "",
    }
    return {"code": 200, "message": "success", "data": {**prediction, **data}}


def response(
    status: int, path: str = RESULT, method: str = "GET", **kwargs: Any
) -> httpx.Response:
    return httpx.Response(
        status, request=httpx.Request(method, f"https://x.test{path}"), **kwargs
    )


def test_a_conforming_response_passes() -> None:
    assert_conforms(response(200, json=envelope()))


def test_a_conforming_body_passes_with_method_path_and_status() -> None:
    assert_conforms(envelope(status="completed"), method="GET", path=RESULT, status=200)


def test_a_body_passes_against_a_named_schema() -> None:
    assert_conforms({"code": 401, "message": "no key"}, schema="error.json")


def test_a_violation_names_path_rule_and_value() -> None:
    with pytest.raises(ContractViolation) as caught:
        assert_conforms(response(200, json=envelope(status="pending")))

    violation = caught.value
    assert violation.path == "$.data.status"
    assert violation.rule.startswith("prediction-envelope.json#/")
    assert violation.rule.endswith("/status/enum")
    assert violation.instance == "pending"
    text = str(violation)
    assert f"Answer to GET {RESULT} (HTTP 200) breaks the contract" in text
    assert "$.data.status: 'pending' is not one of" in text
    assert "Rule: prediction-envelope.json#/" in text
    assert "Value: 'pending'" in text


def test_a_violation_is_a_test_failure_and_a_project_error() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_conforms({"code": "401"}, schema="error.json")
    assert isinstance(caught.value, WavespeedMockError)


def test_every_violation_is_listed() -> None:
    with pytest.raises(ContractViolation) as caught:
        assert_conforms({"code": "401", "message": 7}, schema="error.json")
    assert "(2 violations)" in str(caught.value)
    assert "$.code" in str(caught.value)
    assert "$.message" in str(caught.value)


def test_a_missing_field_names_its_own_path() -> None:
    with pytest.raises(ContractViolation) as caught:
        assert_conforms(
            {"code": 200, "data": {"status": "created"}},
            schema="prediction-envelope.json",
        )
    assert caught.value.path == "$.data.id"


def test_an_undeclared_status_is_a_violation() -> None:
    with pytest.raises(ContractViolation, match="HTTP 201 is not declared") as caught:
        assert_conforms(
            response(
                201, "/api/v3/character-ai/ovi/text-to-video", "POST", json=envelope()
            )
        )
    assert caught.value.rule.startswith("openapi.yaml")


def test_a_non_json_body_where_json_is_declared_is_a_violation() -> None:
    with pytest.raises(ContractViolation, match="not JSON") as caught:
        assert_conforms(response(500, text="<html>Internal Server Error</html>"))
    assert caught.value.path == "$"


def test_a_declared_non_json_answer_passes() -> None:
    clip = response(
        200,
        "/outputs/0f8e2b6c1d4a4e7f9a3b5c6d7e8f9012.mp4",
        content=b"\x00\x00\x00\x18ftypisom",
    )
    assert_conforms(clip)


def test_explicit_arguments_override_the_response() -> None:
    answer = response(200, json={"code": 404, "message": "Task not found"})
    assert_conforms(answer, status=404)
    assert_conforms(answer, schema="error.json")


def test_without_a_schema_or_an_operation_it_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"needs an httpx\.Response"):
        assert_conforms({"code": 200}, method="GET")


def test_a_failing_downstream_test_shows_the_violation_not_the_helper(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from wavespeed_mock.plugins import assert_conforms

        def test_answer():
            assert_conforms({"code": 401}, schema="error.json")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ContractViolation*", "*$.message*required*", "*Rule: error.json#/required*"]
    )
    assert "raise _violation" not in result.stdout.str()
