"""The contract check against fakes: one that conforms and several that do not."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest
from wavespeed_mock.contracts import refunded_statuses, terminal_statuses
from wavespeed_mock.plugins import (
    CheckReport,
    ContractViolation,
    SpendLimitError,
    add_check_parser,
    plan_spend,
    run_check,
    run_contract_check,
)
from wavespeed_mock.plugins import check as check_module
from wavespeed_mock.plugins._media_probe import is_mp4, parse_ffmpeg_banner, probe_clip

from .conftest import BASE_URL, FakeWavespeed

I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"


def run(fake: FakeWavespeed, **options: Any) -> CheckReport:
    return run_contract_check(
        BASE_URL, "test-key", client=fake.client(), poll_interval_s=0, **options
    )


def levels(report: CheckReport, name: str) -> set[str]:
    return {f.level for f in report.findings if f.name.startswith(name)}


# -- a target that conforms ----------------------------------------------------------


def test_a_conforming_target_passes_with_no_warning(fake: FakeWavespeed) -> None:
    report = run(fake)

    assert report.ok, report.render()
    assert report.warnings == [], report.render()
    names = {f.name for f in report.findings}
    assert {
        "auth/missing-key",
        "predictions/unknown-id",
        "media/upload-ticket",
        "submit/bad-body",
        f"{I2V}/submit",
        f"{I2V}/lifecycle",
        f"{I2V}/output",
        f"{T2V}/submit",
        f"{T2V}/lifecycle",
        f"{T2V}/output",
    } <= names
    output = next(f for f in report.findings if f.name == f"{T2V}/output")
    assert "24 fps" in output.detail
    assert "audio aac" in output.detail
    assert report.spent_usd == pytest.approx(0.30)


def test_the_upload_put_carries_no_bearer_key(fake: FakeWavespeed) -> None:
    run(fake, models=[I2V])

    put = next(r for r in fake.requests if r.method == "PUT")
    assert "authorization" not in put.headers
    assert put.headers["content-type"] == "image/png"
    submit = next(
        r
        for r in fake.requests
        if r.url.path == f"/api/v3/{I2V}"
        and b'"prompt"' in r.content
        and b'"image"' in r.content
        and "authorization" in r.headers
    )
    assert f"{BASE_URL}/storage/check-image.png".encode() in submit.content


def test_the_report_renders_plan_findings_and_summary(fake: FakeWavespeed) -> None:
    fake.statuses = ["created", "processing", "created", "completed"]
    text = run(fake, models=[T2V]).render()

    assert f"contract check of {BASE_URL}" in text
    assert "May spend at most $0.15" in text
    assert "PASS" in text
    assert "VIOLATION" in text
    assert "status went backwards: 'processing' → 'created'" in text
    assert text.rstrip().splitlines()[-1].endswith("FAILED")


# -- violations: what is documented or SDK-observed ----------------------------------


def test_a_201_on_submit_is_a_violation(fake: FakeWavespeed) -> None:
    fake.submit_status = 201
    report = run(fake, models=[T2V])

    assert not report.ok
    violation = next(f for f in report.violations if f.name == f"{T2V}/submit")
    assert "HTTP 201" in violation.detail
    assert "exactly 200" in violation.detail


def test_statuses_going_backwards_are_a_violation(fake: FakeWavespeed) -> None:
    fake.statuses = ["processing", "created", "completed"]
    report = run(fake, models=[T2V])

    assert "violation" in levels(report, f"{T2V}/lifecycle")
    assert any("went backwards" in f.detail for f in report.violations)


def test_a_terminal_status_that_changes_is_a_violation(fake: FakeWavespeed) -> None:
    fake.statuses = ["created", "completed", "processing"]
    report = run(fake, models=[T2V])

    assert any(
        "terminal status 'completed' changed to 'processing'" in f.detail
        for f in report.violations
    ), report.render()


def test_a_submit_without_data_id_is_a_violation(fake: FakeWavespeed) -> None:
    fake.include_id = False
    report = run(fake, models=[T2V])

    violation = next(f for f in report.violations if f.name == f"{T2V}/submit")
    assert "No request ID" in violation.detail
    assert report.spent_usd == 0  # nothing to poll, nothing accepted


def test_an_output_that_is_not_mp4_is_a_violation(fake: FakeWavespeed) -> None:
    fake.output = b"<html>not a video</html>"
    report = run(fake, models=[T2V])

    violation = next(f for f in report.violations if f.name == f"{T2V}/output")
    assert "not an MP4" in violation.detail


@pytest.mark.parametrize(
    ("shape", "complaint"),
    [
        ({"fps": 30}, "30 fps; documented 24"),
        ({"seconds": 3.0}, "s long"),
        ({"audio": False}, "no audio stream"),
    ],
)
def test_a_clip_off_the_promise_is_a_violation(
    fake: FakeWavespeed,
    make_clip: Callable[..., bytes],
    shape: dict[str, object],
    complaint: str,
) -> None:
    fake.output = make_clip(**shape)
    report = run(fake, models=[T2V])

    violation = next(f for f in report.violations if f.name == f"{T2V}/output")
    assert complaint in violation.detail


def test_a_key_less_submit_that_is_not_401_is_a_violation(fake: FakeWavespeed) -> None:
    fake.auth_status = 403
    report = run(fake, models=[T2V])

    assert levels(report, "auth/missing-key") == {"violation"}


def test_a_401_outside_the_envelope_is_a_violation(fake: FakeWavespeed) -> None:
    fake.auth_envelope = False
    report = run(fake, models=[T2V])

    violation = next(f for f in report.violations if f.name == "auth/missing-key")
    assert "not JSON" in violation.detail


def test_a_failed_ticket_upload_falls_back_to_the_binary_upload(
    fake: FakeWavespeed,
) -> None:
    fake.ticket_ok = False
    report = run(fake, models=[I2V])

    assert levels(report, "media/upload-ticket") == {"violation"}
    assert levels(report, "media/upload-binary") == {"pass"}
    assert levels(report, f"{I2V}/output") == {"pass"}


def test_without_any_upload_the_image_model_is_skipped(fake: FakeWavespeed) -> None:
    fake.ticket_ok = fake.binary_ok = False
    report = run(fake, models=[I2V])

    assert levels(report, f"{I2V}/submit") == {"warning"}
    assert report.spent_usd == 0
    assert not report.ok


def test_assert_ok_fails_a_test_with_the_report(fake: FakeWavespeed) -> None:
    fake.submit_status = 201
    report = run(fake, models=[T2V])

    with pytest.raises(ContractViolation, match="HTTP 201") as caught:
        report.assert_ok()
    assert isinstance(caught.value, AssertionError)


# -- warnings: the mock's own inferences ---------------------------------------------


def test_a_bad_body_that_fails_as_a_task_is_only_a_warning(fake: FakeWavespeed) -> None:
    fake.bad_body = "task-1400"
    report = run(fake)

    assert report.ok, report.render()
    warning = next(f for f in report.warnings if f.name == "submit/bad-body")
    assert "code 1400" in warning.detail
    assert "HTTP 400" in warning.detail
    # A failed task is refunded (documented), so both clips still fit the budget.
    assert levels(report, f"{T2V}/output") == {"pass"}


def test_a_bad_body_answered_422_is_only_a_warning(fake: FakeWavespeed) -> None:
    fake.bad_body = "422"
    report = run(fake, models=[T2V])

    assert report.ok
    assert levels(report, "submit/bad-body") == {"warning"}


def test_an_unknown_id_that_is_not_404_is_only_a_warning(fake: FakeWavespeed) -> None:
    fake.not_found_status = 400
    report = run(fake, models=[T2V])

    assert report.ok
    assert levels(report, "predictions/unknown-id") == {"warning"}


# -- spending --------------------------------------------------------------------------


def test_the_plan_is_one_clip_per_model_at_registry_prices() -> None:
    plan = plan_spend()

    assert plan.models == (I2V, T2V)
    assert plan.total_usd == pytest.approx(0.30)
    assert plan.limit_usd == pytest.approx(0.30)
    assert "May spend at most $0.30" in plan.describe()


def test_a_plan_over_max_spend_refuses_before_any_request(fake: FakeWavespeed) -> None:
    with pytest.raises(SpendLimitError, match=r"up to \$0.30.*--max-spend \$0.20"):
        run(fake, max_spend=0.2)
    assert fake.requests == []


def test_the_plan_is_said_before_the_first_request(fake: FakeWavespeed) -> None:
    said: list[tuple[str, int]] = []
    run(
        fake,
        models=[T2V],
        progress=lambda line: said.append((line, len(fake.requests))),
    )

    assert said[0] == (
        f"May spend at most $0.15 (one clip each: {T2V} $0.15); limit $0.15.",
        0,
    )


# Cancelled among them: the contract decided so (prediction.json x-refunded).
@pytest.mark.parametrize("status", sorted(refunded_statuses()))
def test_a_task_ending_refunded_costs_nothing(fake: FakeWavespeed, status: str) -> None:
    fake.statuses = ["created", status]
    report = run(fake, models=[T2V])

    assert levels(report, f"{T2V}/result") == {"violation"}
    assert report.spent_usd == 0


@pytest.mark.parametrize(
    "status", sorted(terminal_statuses() - refunded_statuses() - {"completed"})
)
def test_a_task_ending_unrefunded_is_still_charged(
    fake: FakeWavespeed, status: str
) -> None:
    fake.statuses = ["created", status]
    report = run(fake, models=[T2V])

    assert levels(report, f"{T2V}/result") == {"violation"}
    assert report.spent_usd == pytest.approx(0.15)


def test_a_bad_body_the_target_runs_counts_against_the_budget(
    fake: FakeWavespeed,
) -> None:
    fake.bad_body = "run-it"  # neither 400 nor a failed task: the fake completes it
    fake.statuses = ["created", "completed"]
    report = run(fake, models=[T2V])

    assert report.spent_usd == pytest.approx(0.15)
    assert levels(report, f"{T2V}/submit") == {"warning"}  # skipped: over the limit
    assert any("skipped" in f.detail for f in report.warnings)


# -- the command-line entry ----------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wavespeed-mock")
    add_check_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["check", *argv])


def test_run_check_prints_the_report_and_exits_0(
    fake: FakeWavespeed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(check_module, "_open_client", fake.client)
    args = parse(
        "--base-url",
        BASE_URL,
        "--api-key",
        "k",
        "--models",
        T2V,
        "--poll-interval",
        "0",
    )

    assert args.handler is run_check
    assert run_check(args) == 0
    out, err = capsys.readouterr()
    assert "0 violations: OK" in out
    assert "May spend at most $0.15" in err


def test_run_check_exits_1_on_a_violation(
    fake: FakeWavespeed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.submit_status = 201
    monkeypatch.setattr(check_module, "_open_client", fake.client)
    monkeypatch.setenv("WAVESPEED_API_KEY", "from-env")

    assert (
        run_check(
            parse("--base-url", BASE_URL, "--models", T2V, "--poll-interval", "0")
        )
        == 1
    )
    assert "FAILED" in capsys.readouterr().out
    keyed = [
        r.headers["authorization"]
        for r in fake.requests
        if "authorization" in r.headers
    ]
    assert set(keyed) == {"Bearer from-env"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--max-spend", "0.1"], "more than --max-spend $0.10"), ([], "no API key")],
)
def test_run_check_exits_2_when_it_cannot_run(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    if "--max-spend" in argv:
        argv = [*argv, "--api-key", "k"]
    assert run_check(parse("--base-url", BASE_URL, *argv)) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_model_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse("--base-url", BASE_URL, "--models", "character-ai/ovi/text-to-vide0")


# -- probing clips ------------------------------------------------------------------


def test_probe_reads_fps_duration_and_streams(clip: bytes) -> None:
    info = probe_clip(clip)

    assert is_mp4(clip)
    assert info.fps == 24
    assert info.duration_s == pytest.approx(5.0, abs=0.1)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == (
        "h264",
        "aac",
        64,
        64,
    )


def test_probe_of_garbage_says_ffmpeg_cannot_read_it() -> None:
    assert not is_mp4(b"\x00\x00\x00\x18notmp4")
    with pytest.raises(RuntimeError, match="cannot read"):
        probe_clip(b"hello")


def test_banner_without_audio_has_no_audio() -> None:
    info = parse_ffmpeg_banner(
        "  Duration: 00:00:05.04, start: 0.000000, bitrate: 86 kb/s\n"
        "  Stream #0:0[0x1](und): Video: h264 (High), yuv420p(progressive), "
        "960x544 [SAR 1:1 DAR 30:17], 8 kb/s, 24 fps, 24 tbr, 12288 tbn (default)\n"
    )
    assert (info.duration_s, info.fps, info.width, info.height) == (5.04, 24, 960, 544)
    assert not info.has_audio


# -- a target that is not there ------------------------------------------------------


@pytest.fixture
def closed_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_target_is_one_clear_failure(closed_url: str) -> None:
    report = run_contract_check(closed_url, "k", poll_interval_s=0)
    assert not report.ok
    assert report.unreachable is not None and "Connect" in report.unreachable
    assert report.findings == []  # no step reported a violation of its own
    text = report.render()
    assert text.count("CANNOT REACH") == 1 and "VIOLATION" not in text
    with pytest.raises(ContractViolation, match="CANNOT REACH"):
        report.assert_ok()


def test_run_check_exits_2_for_an_unreachable_target(
    closed_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_check(parse("--base-url", closed_url, "--api-key", "k"))
    out = capsys.readouterr().out
    assert code == 2
    assert out.count("CANNOT REACH") == 1 and "VIOLATION" not in out
