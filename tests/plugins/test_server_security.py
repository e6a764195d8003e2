"""The plugin's side of the security rules: blocked webhooks a test can assert,
and the control token, as a downstream suite meets them (run with pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

DOWNSTREAM = """
import json

import httpx
import pytest
from wavespeed_mock.mock_server import verify_webhook

T2V = "character-ai/ovi/text-to-video"


def submit(server, **params):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    answer = httpx.post(f"{server.url}/api/v3/{T2V}", json={"prompt": "p"},
                        params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["id"], headers


def test_a_production_webhook_is_logged_not_sent(wavespeed_server):
    # An IP literal: judged without DNS, so the test touches no network.
    pid, headers = submit(wavespeed_server, webhook="https://93.184.216.34/hooks")
    [entry] = wavespeed_server.webhook_log(pid, blocked=True, at_least=1)
    assert entry["url"] == "https://93.184.216.34/hooks"
    assert "not loopback" in entry["reason"]
    secret = httpx.get(f"{wavespeed_server.url}/api/v3/webhook/secret",
                       headers=headers).json()["data"]["secret"]
    payload = verify_webhook(entry["headers"], entry["body"].encode(), secret,
                             now=entry["at"])
    assert payload["id"] == pid and payload["status"] == "completed"
    assert wavespeed_server.webhook_log(blocked=False) == []


def test_webhook_log_says_what_is_missing(wavespeed_server):
    with pytest.raises(AssertionError, match="at least 1 webhook"):
        wavespeed_server.webhook_log(blocked=True, at_least=1, timeout_s=0.1)


@pytest.mark.wavespeed(control_token="s3cret")
def test_the_control_token(wavespeed_server):
    submit(wavespeed_server)
    assert len(wavespeed_server.predictions) == 1  # the fixture sends the token
    assert httpx.get(f"{wavespeed_server.url}/_mock/predictions").status_code == 401
"""


def test_blocked_webhooks_and_the_control_token_in_a_downstream_suite(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_downstream=DOWNSTREAM)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
