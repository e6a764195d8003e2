"""Server settings: one dataclass, filled from CLI flags or WAVESPEED_MOCK_* variables.

The same names work everywhere: ``Settings(data_dir=...)``, ``--data-dir``,
``WAVESPEED_MOCK_DATA_DIR`` and the pytest marker's keyword.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contracts import body_limits
from ..contracts.errors import WavespeedMockError

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ENV_PREFIX",
    "SCENARIO_HEADER",
    "Settings",
    "SettingsError",
]

ENV_PREFIX = "WAVESPEED_MOCK_"
CONTROL_PREFIX = "/_mock"
"""Where the control API lives (never part of the WaveSpeed API)."""
SCENARIO_HEADER = "x-wavespeed-mock-scenario"
"""The request header that picks a named scenario for one submit."""
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
"""The default pixel limit of every image the server takes in or renders."""
MAX_SETTING_S = 3600.0
"""The longest wait, timeout or interval a setting may name."""
MAX_AGE_S = 10 * 365 * 24 * 3600.0
"""The longest retention age a setting may name (ten years)."""
_BOUNDED_SECONDS: dict[str, tuple[float, bool]] = {
    # name: (the largest value, whether 0 turns it off)
    "sync_wait_s": (MAX_SETTING_S, False),
    "header_timeout_s": (MAX_SETTING_S, False),
    "body_timeout_s": (MAX_SETTING_S, False),
    "webhook_timeout_s": (MAX_SETTING_S, False),
    "webhook_retry_base_s": (MAX_SETTING_S, False),
    "prune_interval_s": (MAX_SETTING_S, True),
    "max_age_s": (MAX_AGE_S, True),
    "max_upload_age_s": (MAX_AGE_S, True),
}


class SettingsError(WavespeedMockError, ValueError):
    """A setting with a value the server cannot use."""


@dataclass
class Settings:
    """Everything the server can be told at start-up."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: Path(".wavespeed-mock"))
    cache_dir: Path | None = None
    """Where rendered clips are cached; defaults to ``data_dir / "cache"``."""
    starting_balance: float | None = None
    """Each API key's starting balance in USD; None means unlimited."""
    public_url: str | None = None
    """Base of the URLs the server hands out; defaults to http://host:port."""
    profile: str | None = None
    """Timing profile: instant, fast, realistic, polls:N or engine. None (unset):
    the engine's ``default_profile`` (``engine`` for ovi), else ``fast``."""
    api_keys: tuple[str, ...] = ()
    """Accepted Bearer keys; empty accepts any non-empty key."""
    strict: bool = False
    """Reject unknown body fields and the mock-only data: URIs."""
    engine: str = "synthetic"
    fetch_remote_images: bool = False
    """Fetch http(s) image URLs (bounded); off keeps the server hermetic."""
    virtual_clock: bool = False
    """Start with a frozen virtual clock that only the control API moves."""
    max_body_bytes: int = field(default_factory=lambda: body_limits().submit_bytes)
    """The largest submit body; the contract's bound by default."""
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    """The pixel limit of every image: submit, uploads, the loader, the engines."""
    max_upload_bytes: int = 200 * 1024 * 1024
    sync_wait_s: float = 90.0
    """How long a sync-mode submit waits before answering the 5004 timeout."""
    header_timeout_s: float = 10.0
    """How long a client may take to send a request's headers (then 408, closed)."""
    body_timeout_s: float = 60.0
    """How long a client may take to send a request's whole body (then 408)."""
    render_threads: int = 1
    """x264 threads per encode; pinned because output bytes depend on it."""
    access_log: bool = False
    """Log one line per request (method, path, status, milliseconds) to the
    ``wavespeed_mock.access`` logger; ``serve`` prints it on standard error."""
    check_responses: bool = False
    """Validate every JSON answer against the contract and record violations."""
    webhook_allow: tuple[str, ...] = ()
    """Where webhooks may be delivered beyond loopback: host names, addresses or
    networks (``10.0.0.0/8``), or ``*`` for anywhere. Judged on the resolved
    address; a delivery elsewhere is logged with its body, not sent."""
    fetch_allow: tuple[str, ...] = ()
    """Host names, addresses or networks that ``fetch_remote_images`` may reach
    although they are loopback, link-local, private, multicast or reserved."""
    allowed_hosts: tuple[str, ...] = ()
    """Host header values served beyond loopback names and addresses, the public
    URL's host and the bound address (``*`` serves any: only behind a proxy that
    checks Host itself). A defence against DNS rebinding."""
    control_token: str | None = field(default=None, repr=False)
    """When set, the control API (``/_mock``, but its health and documents)
    answers only requests with ``Authorization: Bearer <token>``."""
    webhook_retry_base_s: float = 1.0
    """First backoff before a webhook retry, then doubled (1, 2, 4 s). [inferred]"""
    webhook_timeout_s: float = 10.0
    """Real-time bound of one webhook attempt. [inferred]"""
    max_predictions: int = 100_000
    """Keep at most this many predictions: beyond it the oldest go, with their
    files (0 keeps all). About 2.6 KB each in memory and on disk."""
    max_age_s: float = 7 * 24 * 3600.0
    """Forget predictions older than this on the server clock, with their files
    (0 keeps all). The API keeps them 7 days. [documented: D-PRED]"""
    max_upload_age_s: float = 7 * 24 * 3600.0
    """Delete uploads older than this, in real time (0 keeps all). The API keeps
    them 7 days. [documented: D-UP]"""
    max_cache_bytes: int = 1024**3
    """Bound of the render cache: least recently used clips go first (0: none)."""
    prune_interval_s: float = 60.0
    """How often the server applies retention by age and trims the render cache."""
    record: Path | None = None
    """Record through the proxy into this cassette folder (needs ``upstream``)."""
    upstream: str | None = None
    """The API a recording forwards to, e.g. https://api.wavespeed.ai."""
    record_max_submits: int | None = None
    """Spend cap of a recording: submits past this many are refused (403)."""
    record_max_output_bytes: int = 256 * 1024 * 1024
    """The largest output file a recording downloads and stores."""
    replay: Path | None = None
    """Answer recorded tasks from this cassette folder."""
    replay_speed: float = 1.0
    """How much faster than recorded a replay walks the status sequence."""
    replay_by: str = "time"
    """``time`` (recorded offsets / speed) or ``polls`` (the n-th poll, n-th answer)."""
    replay_miss: str = "synthetic"
    """A submit no recording matches: ``synthetic`` (the engine) or ``error`` (404)."""
    replay_ignore: tuple[str, ...] = ()
    """Top-level body fields left out when matching a submit, e.g. ``("seed",)``."""
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    """The engine's own options by name (``{"checkout": Path("~/Ovi")}`` for ovi);
    unset ones come from ``WAVESPEED_MOCK_<ENGINE>_<OPTION>``, then the default."""

    def __post_init__(self) -> None:
        # Every time the server accepts is bounded: a wait or timeout of 0, a
        # negative one, NaN or one of centuries is a typo, not a wish.
        for name, (largest, zero_is_off) in _BOUNDED_SECONDS.items():
            value = float(getattr(self, name))
            if not (0 < value <= largest or (zero_is_off and value == 0)):
                off = " or 0 to turn it off" if zero_is_off else ""
                raise SettingsError(
                    f"the setting {name} is {value!r}: give seconds in "
                    f"(0, {largest:.0f}]{off}"
                )

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Settings from ``WAVESPEED_MOCK_*`` variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "engine_options":
                continue  # each engine reads its own variables (core.engine)
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("bool"):
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(raw)
            return lowered in _TRUE
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("Path"):
            return Path(raw)
        if kind.startswith("tuple"):
            return tuple(k for k in (p.strip() for p in raw.split(",")) if k)
    except ValueError:
        raise SettingsError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}"
        ) from None
    return raw
