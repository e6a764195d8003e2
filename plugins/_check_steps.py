"""The steps of the contract check, each against a live target over HTTP.

Each step records :class:`Finding`s on the report. The rule for the level: what
WaveSpeed documents, or what the official SDKs rely on, is a violation when broken;
what only the mock infers (exact status codes the docs do not give, 400 versus a
failed task) is a warning, so that the real API never fails on the mock's guesses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import httpx

from ..contracts import (
    ModelSpec,
    iter_errors,
    iter_response_errors,
    request_schema,
    statuses,
    terminal_statuses,
    validate_request,
)
from ..contracts.errors import ContractError
from ._check_report import CheckReport
from ._media_probe import is_mp4, probe_clip

CHECK_PROMPT = (
    "A smiling sun rises over a green meadow, the camera slowly pushes in.\n"
    "<S>Good morning, world.<E>\n"
    "<AUDCAP>Birdsong and a soft breeze.<ENDAUDCAP>"
)
CHECK_SEED = 42
IMAGE_NAME = "check-image.png"
# Stands in for an image in bodies that must never run (no key, missing field).
PLACEHOLDER_IMAGE = "https://example.com/wavespeed-mock-check.png"

# The SDKs retry these on a poll; anything else non-200 raises at once.
_RETRIED = frozenset({429, 500, 502, 503, 504})
_MAX_POLL_RETRIES = 5


def _rank(status: str) -> int:
    """A status's place in the lifecycle; terminal and unknown ones come last."""
    live = [s for s in statuses() if s not in terminal_statuses()]
    return live.index(status) if status in live else len(live)


def bundled_image() -> bytes:
    """The PNG the check uploads for image-to-video models."""
    return (
        resources.files(__package__ or "wavespeed_mock.plugins") / "assets" / IMAGE_NAME
    ).read_bytes()


def check_body(spec: ModelSpec, image_url: str) -> dict[str, Any]:
    """The documented minimal body for ``spec``: its required fields (a prompt or
    a text, the image if it takes one, else each field's default or first
    choice), and the seed."""
    schema = request_schema(spec.id, strict=True)
    props = schema.get("properties", {})
    body: dict[str, Any] = {}
    missing = []
    for key in schema.get("required", []):
        prop = props.get(key, {})
        accept = str(prop.get("x-accept", "")) if isinstance(prop, dict) else ""
        if key in ("prompt", "text"):
            body[key] = CHECK_PROMPT
        elif key in ("image", "images") or accept.startswith("image"):
            body[key] = [image_url] if prop.get("type") == "array" else image_url
        elif isinstance(prop, dict) and "default" in prop:
            body[key] = prop["default"]
        elif isinstance(prop, dict) and prop.get("enum"):
            body[key] = prop["enum"][0]
        else:
            missing.append(key)
    if missing:
        raise ValueError(
            f"The contract check cannot fill the required field(s) {missing!r} of "
            f"{spec.id!r}; teach them to check_body() in "
            f"wavespeed_mock/plugins/_check_steps.py."
        )
    if "seed" in props:
        body["seed"] = CHECK_SEED
    validate_request(spec.id, body, strict=True)
    return body


@dataclass
class PollOutcome:
    """The last prediction seen and every status, in order."""

    data: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)
    finished: bool = False


class Target:
    """The system under check: a base URL, a key, an HTTP client, a report."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        api_key: str,
        report: CheckReport,
        *,
        timeout_s: float,
        poll_interval_s: float,
        progress: Callable[[str], None],
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.report = report
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.progress = progress

    # -- plumbing -------------------------------------------------------------------

    def send(
        self, method: str, path_or_url: str, *, auth: bool = True, **kwargs: Any
    ) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        headers = dict(kwargs.pop("headers", {}) or {})
        if auth:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return self.client.request(method, url, headers=headers, **kwargs)

    def contract_errors(
        self, response: httpx.Response, method: str, path: str
    ) -> list[str]:
        """What is wrong with a JSON answer, as ``path: message [rule]`` lines."""
        try:
            body = response.json()
        except ValueError:
            return [f"$: the body is not JSON: {response.text[:80]!r}"]
        return [
            _describe(e)
            for e in iter_response_errors(method, path, response.status_code, body)
        ]

    # -- auth --------------------------------------------------------------------------

    def check_missing_key(self, spec: ModelSpec) -> None:
        name = "auth/missing-key"
        try:
            answer = self.send(
                "POST", spec.path, auth=False, json=check_body(spec, PLACEHOLDER_IMAGE)
            )
        except httpx.HTTPError as exc:
            self.report.add("violation", name, f"the request failed: {exc!r}")
            return
        if answer.status_code != 401:
            self.report.add(
                "violation",
                name,
                f"a submit without Authorization got HTTP {answer.status_code}; "
                f"expected 401 (documented)",
            )
            return
        problems = envelope_problems(answer)
        if problems:
            self.report.add(
                "violation",
                name,
                "HTTP 401, but not in the {code, message} error envelope the "
                "SDKs read:\n" + "\n".join(problems),
            )
            return
        self.report.add("pass", name, "HTTP 401 in the {code, message} envelope")
        code = answer.json().get("code")
        if code != 401:
            self.report.add(
                "warning",
                name,
                f"the envelope's code is {code!r}, not the HTTP status 401 "
                f"(the mock repeats the status; inferred)",
            )

    # -- unknown prediction ---------------------------------------------------------

    def unreachable(self) -> str | None:
        """Why the target cannot be reached at all, or None when it answers.

        One GET of an unknown task (free, and the next step's own request): any
        HTTP answer, whatever its status, means the target is there.
        """
        path = f"/api/v3/predictions/{uuid.uuid4().hex}/result"
        try:
            self.send("GET", path)
        except httpx.TransportError as exc:
            return f"{exc.__class__.__name__}: {exc}" if str(exc) else repr(exc)
        return None

    def check_unknown_prediction(self) -> None:
        name = "predictions/unknown-id"
        path = f"/api/v3/predictions/{uuid.uuid4().hex}/result"
        try:
            answer = self.send("GET", path)
        except httpx.HTTPError as exc:
            self.report.add("violation", name, f"the request failed: {exc!r}")
            return
        if answer.status_code == 404 and not envelope_problems(answer):
            self.report.add("pass", name, "HTTP 404 in the {code, message} envelope")
            return
        self.report.add(
            "warning",
            name,
            f"an unknown prediction id got HTTP {answer.status_code} "
            f"{answer.text[:120]!r}; the mock answers 404 in the error envelope "
            f"(inferred: the docs give no status)",
        )

    # -- uploads ----------------------------------------------------------------------

    def upload_image(self) -> str | None:
        """Upload the bundled image; the URL the target can fetch, or None."""
        data = bundled_image()
        url = self._upload_with_ticket(data)
        if url is not None:
            return url
        return self._upload_binary(data)

    def _upload_with_ticket(self, data: bytes) -> str | None:
        name = "media/upload-ticket"
        path = "/api/v3/media/uploads"
        try:
            answer = self.send(
                "POST",
                path,
                json={
                    "filename": IMAGE_NAME,
                    "size": len(data),
                    "content_type": "image/png",
                },
            )
            problems = self.contract_errors(answer, "POST", path)
            if answer.status_code != 200 or problems:
                self.report.add(
                    "violation",
                    name,
                    f"POST {path} got HTTP {answer.status_code}; the SDKs need "
                    f"200 with data.upload and data.download_url (SDK-observed)"
                    + _lines(problems),
                )
                return None
            ticket = answer.json()["data"]
            upload = ticket["upload"]
            # A pre-signed URL: only the ticket's headers, never the bearer key.
            stored = self.send(
                upload["method"].upper(),
                upload["url"],
                auth=False,
                content=data,
                headers=upload.get("headers") or {},
            )
        except (httpx.HTTPError, ValueError) as exc:
            self.report.add("violation", name, f"the upload flow failed: {exc!r}")
            return None
        if not stored.is_success:
            self.report.add(
                "violation",
                name,
                f"PUT of the bytes to upload.url got HTTP {stored.status_code} "
                f"(sent without Authorization, as the SDKs do)",
            )
            return None
        download_url = str(ticket["download_url"])
        self.report.add("pass", name, f"ticket, PUT and download_url {download_url}")
        self._check_download(download_url, data, name)
        return download_url

    def _upload_binary(self, data: bytes) -> str | None:
        name = "media/upload-binary"
        path = "/api/v3/media/upload/binary"
        try:
            answer = self.send(
                "POST", path, files={"file": (IMAGE_NAME, data, "image/png")}
            )
        except httpx.HTTPError as exc:
            self.report.add("violation", name, f"the request failed: {exc!r}")
            return None
        problems = self.contract_errors(answer, "POST", path)
        if answer.status_code != 200 or problems:
            self.report.add(
                "violation",
                name,
                f"the fallback POST {path} (multipart field file) got HTTP "
                f"{answer.status_code} (documented: 200 with data.download_url)"
                + _lines(problems),
            )
            return None
        download_url = str(answer.json()["data"]["download_url"])
        self.report.add("pass", name, f"fallback upload gave {download_url}")
        self._check_download(download_url, data, name)
        return download_url

    def _check_download(self, url: str, data: bytes, name: str) -> None:
        try:
            fetched = self.send("GET", url, auth=False, follow_redirects=True)
        except httpx.HTTPError as exc:
            fetched_ok, detail = False, repr(exc)
        else:
            fetched_ok = fetched.status_code == 200 and fetched.content == data
            detail = f"HTTP {fetched.status_code}, {len(fetched.content)} bytes"
        if not fetched_ok:
            self.report.add(
                "warning",
                name,
                f"download_url does not give back the uploaded bytes from here "
                f"({detail}); the target itself may still reach it",
            )

    # -- submitting and polling --------------------------------------------------------

    def submit(
        self,
        spec: ModelSpec,
        body: dict[str, Any],
        name: str,
        *,
        expect_valid: bool = True,
    ) -> tuple[httpx.Response | None, str | None]:
        """POST a body; the answer and the task id (None when there is none)."""
        try:
            answer = self.send("POST", spec.path, json=body)
        except httpx.HTTPError as exc:
            self.report.add(
                "violation" if expect_valid else "warning",
                name,
                f"the submit failed: {exc!r}",
            )
            return None, None
        task_id = None
        try:
            data = answer.json().get("data")
            if (
                isinstance(data, dict)
                and isinstance(data.get("id"), str)
                and data["id"]
            ):
                task_id = data["id"]
        except (ValueError, AttributeError):
            pass
        return answer, task_id

    def poll(
        self, task_id: str, name: str, first: dict[str, Any] | None
    ) -> PollOutcome:
        """Poll until terminal (and once more), checking every answer on the way."""
        outcome = PollOutcome()
        problems: list[str] = []
        if first is not None:
            self._observe(first, outcome, problems, task_id)
        path = f"/api/v3/predictions/{task_id}/result"
        deadline = time.monotonic() + self.timeout_s
        retries = 0
        seen_terminal = 1 if outcome.finished else 0
        retried: set[int] = set()
        while seen_terminal < 2:
            if time.monotonic() > deadline:
                problems.append(
                    f"not terminal after {self.timeout_s:g} s "
                    f"(statuses: {' → '.join(outcome.statuses) or 'none'})"
                )
                break
            if outcome.statuses:
                time.sleep(self.poll_interval_s)
            try:
                answer = self.send("GET", path)
            except httpx.HTTPError as exc:
                retries += 1
                if retries > _MAX_POLL_RETRIES:
                    problems.append(f"GET {path} failed {retries} times: {exc!r}")
                    break
                continue
            if answer.status_code in _RETRIED and retries < _MAX_POLL_RETRIES:
                retries += 1
                if answer.status_code not in retried:
                    retried.add(answer.status_code)
                    self.report.add(
                        "warning",
                        name,
                        f"a poll got HTTP {answer.status_code}; retried, as "
                        f"the SDKs do",
                    )
                continue
            if answer.status_code != 200:
                problems.append(
                    f"GET {path} got HTTP {answer.status_code} "
                    f"{answer.text[:120]!r}; the SDKs need 200"
                )
                break
            problems.extend(
                f"poll: {p}" for p in self.contract_errors(answer, "GET", path)
            )
            try:
                data = answer.json().get("data")
            except (ValueError, AttributeError):
                data = None
            if not isinstance(data, dict):
                break
            self._observe(data, outcome, problems, task_id)
            # Once terminal, one more poll shows whether the status stays.
            if outcome.finished or seen_terminal:
                seen_terminal += 1
        self.report.add(
            "violation" if problems else "pass",
            f"{name}/lifecycle",
            _dedupe(problems)
            if problems
            else f"{' → '.join(outcome.statuses)}; every answer conforms; the terminal "
            f"status stayed",
        )
        return outcome

    def _observe(
        self,
        data: dict[str, Any],
        outcome: PollOutcome,
        problems: list[str],
        task_id: str,
    ) -> None:
        status = data.get("status")
        if not isinstance(status, str):
            problems.append(f"$.data.status is {status!r}")
            return
        if data.get("id") not in (None, task_id):
            problems.append(f"$.data.id changed from {task_id!r} to {data.get('id')!r}")
        previous = outcome.statuses[-1] if outcome.statuses else None
        if previous is not None and previous != status:
            if previous in terminal_statuses():
                problems.append(f"terminal status {previous!r} changed to {status!r}")
            elif _rank(status) < _rank(previous):
                problems.append(f"status went backwards: {previous!r} → {status!r}")
        if status != "completed" and data.get("outputs"):
            problems.append(
                f"outputs are not empty while {status!r} (documented: empty "
                f"until completed)"
            )
        if previous != status:
            outcome.statuses.append(status)
            self.progress(f"  task {task_id}: {status}")
        outcome.data = data
        outcome.finished = status in terminal_statuses()

    # -- the clip ----------------------------------------------------------------------

    def check_output(self, spec: ModelSpec, data: dict[str, Any], name: str) -> None:
        name = f"{name}/output"
        outputs = data.get("outputs") or []
        if not outputs or not isinstance(outputs[0], str):
            self.report.add(
                "violation",
                name,
                f"a completed task has no output URL (outputs={outputs!r})",
            )
            return
        url = outputs[0]
        expected = spec.outputs_for({})
        if expected.inline:
            self.report.add("pass", name, f"text output inline, {len(url)} characters")
            return
        try:
            answer = self.send("GET", url, auth=False, follow_redirects=True)
        except httpx.HTTPError as exc:
            self.report.add("violation", name, f"downloading {url} failed: {exc!r}")
            return
        if answer.status_code != 200:
            self.report.add(
                "violation", name, f"downloading {url} got HTTP {answer.status_code}"
            )
            return
        clip = answer.content
        if expected.kind != "video":
            # Images, sounds, texts: the file came back; its kind is the model's.
            self.report.add(
                "pass",
                name,
                f"{expected.kind} output, {len(clip)} bytes "
                f"({answer.headers.get('content-type', 'no content-type')})",
            )
            return
        if not is_mp4(clip):
            self.report.add(
                "violation",
                name,
                f"{url} is not an MP4 (no ftyp box at byte 4; starts {clip[:12]!r})",
            )
            return
        try:
            info = probe_clip(clip)
        except (RuntimeError, OSError) as exc:
            self.report.add("violation", name, f"ffmpeg cannot read {url}: {exc}")
            return
        problems = []
        if info.fps is None or abs(info.fps - expected.fps) > 0.05:
            found = f"{info.fps:g} fps" if info.fps else "no frame rate"
            problems.append(f"{found}; documented {expected.fps:g}")
        documented_s = expected.frame_count / expected.fps
        if not expected.frames:
            documented_s = expected.duration_s or documented_s
        low, high = _duration_range(documented_s)
        declared_note = ""
        if info.duration_s is None or not low <= info.duration_s <= high:
            declared = self.declared_clip_seconds()
            if declared is not None and info.duration_s is not None:
                low, high = _duration_range(declared)
            if declared is not None and low <= (info.duration_s or 0) <= high:
                declared_note = (
                    f" (as the mock's engine declares for its variant; the API "
                    f"documents {documented_s:g} s)"
                )
            else:
                problems.append(
                    f"{info.duration_s or 0:.2f} s long; documented about "
                    f"{documented_s:g} s ({low:.2f}-{high:.2f})"
                )
        if expected.audio and not info.has_audio:
            problems.append("no audio stream; documented: synchronized video and audio")
        if problems:
            self.report.add("violation", name, f"{url}: " + "; ".join(problems))
            return
        self.report.add(
            "pass",
            name,
            f"MP4, {info.fps:g} fps, {info.duration_s:.2f} s{declared_note}, video "
            f"{info.video_codec} {info.width}x{info.height}, audio {info.audio_codec}",
        )

    def declared_clip_seconds(self) -> float | None:
        """The clip length a wavespeed-mock target declares for its engine.

        A mock running a model variant with longer clips (Ovi's 960x960_10s) says
        so in ``/_mock/state``; asked only when a clip's length is not the API's,
        so a check of the real API never asks. None where nothing is declared.
        """
        try:
            answer = self.send("GET", "/_mock/state", auth=False)
            data = answer.json().get("data") if answer.status_code == 200 else None
        except Exception:  # not a mock, or not answering: nothing is declared
            return None
        seconds = data.get("clip_duration_s") if isinstance(data, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            return float(seconds)
        return None


def _duration_range(seconds: float) -> tuple[float, float]:
    """The lengths accepted for a clip documented as ``seconds`` long."""
    return seconds * 0.9, seconds * 1.12


def _describe(error: ContractError) -> str:
    rule = f" [{error.schema_name}#{error.schema_path}]" if error.schema_name else ""
    return f"{error.path}: {error.message}{rule}"


def envelope_problems(answer: httpx.Response) -> list[str]:
    try:
        body = answer.json()
    except ValueError:
        return [f"$: the body is not JSON: {answer.text[:80]!r}"]
    return [_describe(e) for e in iter_errors("error.json", body)]


def _lines(problems: list[str]) -> str:
    return "".join(f"\n{p}" for p in problems[:5])


def _dedupe(problems: list[str]) -> str:
    unique = list(dict.fromkeys(problems))
    shown = unique[:8]
    more = (
        f"\n... and {len(unique) - len(shown)} more" if len(unique) > len(shown) else ""
    )
    return "\n".join(shown) + more
