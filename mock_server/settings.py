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

from ..contracts import CONTROL_PREFIX, body_limits
from ..contracts.errors import WavespeedMockError

__all__ = [
    "ANY_MODEL_HEADER",
    "CONTROL_PREFIX",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ENV_PREFIX",
    "SCENARIO_HEADER",
    "Settings",
    "SettingsError",
    "flag_of",
    "parse_bool",
    "setting",
    "setting_fields",
]

ENV_PREFIX = "WAVESPEED_MOCK_"
SCENARIO_HEADER = "x-wavespeed-mock-scenario"
ANY_MODEL_HEADER = "x-wavespeed-mock-any-model"
"""On a submit answered by ``--any-model``: the output kind inferred from the id."""
"""The request header that picks a named scenario for one submit."""
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
"""The default pixel limit of every image the server takes in or renders."""
MAX_SETTING_S = 3600.0
"""The longest wait, timeout or interval a setting may name."""
MAX_AGE_S = 10 * 365 * 24 * 3600.0
"""The longest retention age a setting may name (ten years)."""


def is_database_url(value: str) -> bool:
    """Whether ``value`` names a PostgreSQL database (``--database``)."""
    return value.startswith(("postgresql://", "postgres://"))


MAX_WORKERS = 64
"""The most ``serve --workers`` starts: a bound, not a tuning."""

DEFAULT_SYNC_WAIT_S = 90.0
"""A sync-mode submit's wait where the engine names none (the synthetic engine)."""
PRESIGN_MAX_S = 7 * 24 * 3600.0
"""The longest a presigned S3 URL may live (S3's own bound: seven days)."""
_BOUNDED_SECONDS: dict[str, tuple[float, bool]] = {
    # name: (the largest value, whether 0 turns it off)
    "sync_wait_s": (MAX_SETTING_S, False),
    "header_timeout_s": (MAX_SETTING_S, False),
    "body_timeout_s": (MAX_SETTING_S, False),
    "webhook_timeout_s": (MAX_SETTING_S, False),
    "webhook_retry_base_s": (MAX_SETTING_S, False),
    "prune_interval_s": (MAX_SETTING_S, True),
    "lease_s": (MAX_SETTING_S, False),
    "max_age_s": (MAX_AGE_S, True),
    "max_upload_age_s": (MAX_AGE_S, True),
    "presign_s": (PRESIGN_MAX_S, True),
}


class SettingsError(WavespeedMockError, ValueError):
    """A setting with a value the server cannot use."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    group: str = "server",
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    factory: Any = dataclasses.MISSING,
    shown_default: str | None = None,
    repr: bool = True,
) -> Any:
    """A :class:`Settings` field, stated once: its default, its help, and the
    flag (``--name-with-dashes`` unless ``flag`` says otherwise) that
    ``wavespeed-mock serve`` generates from it. Its variable is always
    ``WAVESPEED_MOCK_<FIELD NAME>``."""
    metadata = {
        "help": help,
        "flag": flag,
        "group": group,
        "metavar": metavar,
        "choices": choices,
        "shown_default": shown_default,
    }
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata, repr=repr)
    return field(default=default, metadata=metadata, repr=repr)


@dataclass
class Settings:
    """Everything the server can be told at start-up: each field is also a
    ``serve`` flag and a ``WAVESPEED_MOCK_<NAME>`` variable (``flag_of``)."""

    host: str = setting("127.0.0.1", help="address to bind (loopback by default)")
    port: int = setting(8000, help="port")
    data_dir: Path = setting(
        factory=lambda: Path(".wavespeed-mock"),
        help="SQLite state, clips, uploads, render cache",
        shown_default=".wavespeed-mock",
    )
    cache_dir: Path | None = setting(
        None, help="where rendered clips are cached", shown_default="<data-dir>/cache"
    )
    outputs: str | None = setting(
        None,
        help="an s3://bucket/prefix URL: outputs, uploads and kept input images are "
        "also kept there, and a server lacking one (a replica on another machine) "
        "gets it from there (docs/scale-out.md; pip install 'wavespeed-mock[s3]')",
        metavar="URL",
        shown_default="the data dir only",
    )
    s3_endpoint: str | None = setting(
        None,
        help="with --outputs: the S3-compatible endpoint (MinIO, moto), instead of AWS's",
        metavar="URL",
        shown_default="AWS",
    )
    presign_s: float = setting(
        0.0,
        flag="--presign",
        help="with --outputs: hand out output URLs as presigned URLs of the bucket, "
        "valid this many seconds, so downloads go to the bucket, not the mock (0: "
        "the mock's own /outputs/ URLs)",
        shown_default="0 (the mock's URLs)",
    )
    database: str | None = setting(
        None,
        help="a postgresql:// URL: predictions, charges and small values shared by "
        "every process pointed at it (docs/scale-out.md)",
        metavar="URL",
        shown_default="state.sqlite3 in the data dir",
        repr=False,  # the URL may hold a password
    )
    lease_s: float = setting(
        10.0,
        flag="--lease",
        help="with a postgresql:// database: seconds a process holds its tasks' "
        "renders and webhooks without renewing before another takes them over "
        "(a crash; docs/scale-out.md)",
    )
    no_render: bool = setting(
        False,
        help="with --database: render nothing and send no webhooks here; "
        "`wavespeed-mock worker` processes take that work (docs/scale-out.md)",
    )
    workers: int = setting(
        1,
        help="server processes answering on the one port; more than 1 needs "
        "--database, the state they share (docs/scale-out.md)",
    )
    starting_balance: float | None = setting(
        None, help="each API key's starting balance in USD", shown_default="unlimited"
    )
    public_url: str | None = setting(
        None,
        help="base of the URLs handed out (behind a proxy, in a container)",
        shown_default="http://host:port",
    )
    profile: str | None = setting(
        None,
        help="timing profile: instant, fast, realistic, polls:N or engine",
        shown_default="the engine's (engine for ovi), else fast",
    )
    api_keys: tuple[str, ...] = setting(
        (),
        flag="--api-key",
        metavar="KEY",
        help="accept only this Bearer key (repeatable)",
        shown_default="any non-empty key",
    )
    strict: bool = setting(
        False, help="reject unknown body fields and the mock-only data: URIs"
    )
    catalogue: tuple[str, ...] = setting(
        (),
        flag="--catalogue",
        metavar="FILE",
        help="serve the models of this catalogue file too (repeatable; a saved GET "
        "/api/v3/models answer works as it is; later files override earlier entries)",
        shown_default="the built-in catalogue only",
    )
    tls: bool = setting(
        False,
        help="answer HTTPS with a certificate for api.wavespeed.ai (and the served "
        "names) from a local CA kept in the data folder; the banner says how to "
        "trust it (needs the tls extra)",
    )
    timestamp_digits: str = setting(
        "varied",
        choices=("varied", "0", "2", "3", "9"),
        help="fractional digits of created_at: varied (0, 2, 3 or 9, fixed per task, "
        "as real bodies carry them) or one style pinned",
    )
    proxy_port: int | None = setting(
        None,
        metavar="PORT",
        help="also listen here as a forward proxy that answers CONNECT "
        "api.wavespeed.ai:443 only (HTTPS_PROXY=http://HOST:PORT); turns on --tls "
        "and hands out URLs under https://api.wavespeed.ai",
        shown_default="off",
    )
    any_model: bool = setting(
        False,
        help="serve any /api/v3/<owner>/<model> id the catalogue lacks, with a "
        "permissive schema and the output kind inferred from the id",
    )
    engine: str = setting(
        "synthetic",
        help="synthetic, ovi, or an engine from the wavespeed_mock.engines entry points",
    )
    fetch_remote_images: bool = setting(
        False,
        help="fetch http(s) image URLs from public addresses (bounded); off: a "
        "placeholder frame derived from the URL",
    )
    virtual_clock: bool = setting(
        False, help="start on a frozen clock that only POST /_mock/clock moves"
    )
    max_body_bytes: int = setting(
        factory=lambda: body_limits().submit_bytes,
        group="limits",
        help="the largest submit body",
        shown_default="the contract's bound",
    )
    max_image_pixels: int = setting(
        DEFAULT_MAX_IMAGE_PIXELS,
        group="limits",
        help="the pixel limit of every image: submit, uploads, the loader, the engines",
    )
    max_upload_bytes: int = setting(
        200 * 1024 * 1024, group="limits", help="the largest upload"
    )
    sync_wait_s: float | None = setting(
        None,
        flag="--sync-wait",
        help="seconds a sync-mode submit waits before the 5004 answer",
        shown_default="the engine's (900 for ovi: a real clip takes minutes), else 90",
    )
    header_timeout_s: float = setting(
        10.0,
        flag="--header-timeout",
        group="limits",
        help="seconds a client may take to send a request's headers; then 408, closed",
    )
    body_timeout_s: float = setting(
        60.0,
        flag="--body-timeout",
        group="limits",
        help="seconds a client may take to send a whole body; then 408",
    )
    lazy_renders: bool = setting(
        False,
        help="make a clip only when it is first downloaded (or read as base64): a "
        "task completes on its schedule without one, so tests that never download "
        "pay nothing for media",
    )
    journal_size: int = setting(
        10_000, group="limits", help="requests the journal keeps, the newest"
    )
    webhook_log_size: int = setting(
        10_000,
        group="limits",
        help="webhook delivery attempts the log keeps, the newest",
    )
    render_threads: int = setting(
        1, help="x264 threads per encode (pinned: the output bytes depend on it)"
    )
    access_log: bool = setting(
        False,
        help="one line per request on stderr: method, path, status, milliseconds "
        "(the wavespeed_mock.access logger)",
    )
    check_responses: bool = setting(
        False,
        help="validate every JSON answer against the contract and record violations",
    )
    webhook_allow: tuple[str, ...] = setting(
        (),
        group="security",
        metavar="HOST",
        help="deliver webhooks to this host, address or network too, or '*' for any "
        "(repeatable; judged on the resolved address); others are logged, not sent",
        shown_default="loopback only",
    )
    fetch_allow: tuple[str, ...] = setting(
        (),
        group="security",
        metavar="HOST",
        help="an internal host, address or network --fetch-remote-images may reach "
        "(repeatable); loopback, private, link-local, multicast and reserved "
        "addresses are refused otherwise",
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        flag="--allowed-host",
        group="security",
        metavar="HOST",
        help="also answer this Host header (repeatable; '*' any: only behind a proxy "
        "that checks Host); loopback names and addresses and the public URL's host "
        "are always served",
    )
    control_token: str | None = setting(
        None,
        group="security",
        metavar="TOKEN",
        help="the control API (/_mock, but its health and documents) then needs "
        "'Authorization: Bearer TOKEN'",
        repr=False,
    )
    webhook_retry_base_s: float = setting(
        1.0,
        flag="--webhook-retry-base",
        help="first backoff before a webhook retry, then doubled (1, 2, 4 s) [inferred]",
    )
    webhook_timeout_s: float = setting(
        10.0,
        flag="--webhook-timeout",
        help="real-time bound of one webhook attempt [inferred]",
    )
    max_predictions: int = setting(
        100_000,
        group="retention",
        help="keep at most this many predictions, the newest, with their files "
        "(0: all); about 2.6 KB each in memory and on disk",
    )
    max_age_s: float = setting(
        7 * 24 * 3600.0,
        flag="--max-age",
        group="retention",
        help="forget predictions older than this many seconds on the server clock, "
        "with their files (0: never); the API keeps them 7 days [documented: D-PRED]",
    )
    max_upload_age_s: float = setting(
        7 * 24 * 3600.0,
        flag="--max-upload-age",
        group="retention",
        help="delete uploads older than this many seconds, in real time (0: never); "
        "the API keeps them 7 days [documented: D-UP]",
    )
    max_cache_bytes: int = setting(
        1024**3,
        group="retention",
        help="bound of the render cache, least recently used clips first (0: none)",
    )
    prune_interval_s: float = setting(
        60.0,
        flag="--prune-interval",
        group="retention",
        help="seconds between the server's retention passes (0: none)",
    )
    record: Path | None = setting(
        None,
        group="record",
        metavar="CASSETTE",
        help="proxy /api/v3 to --upstream and record into this cassette folder",
    )
    upstream: str | None = setting(
        None,
        group="record",
        metavar="URL",
        help="the API a recording forwards to, e.g. https://api.wavespeed.ai",
    )
    record_max_submits: int | None = setting(
        None,
        group="record",
        metavar="N",
        help="spend cap of a recording: submits past N are refused (403)",
    )
    record_max_output_bytes: int = setting(
        256 * 1024 * 1024,
        group="record",
        metavar="BYTES",
        help="the largest output file a recording downloads and stores",
    )
    replay: Path | None = setting(
        None,
        group="record",
        metavar="CASSETTE",
        help="answer recorded tasks from this cassette folder",
    )
    replay_speed: float = setting(
        1.0,
        group="record",
        metavar="X",
        help="play recorded status sequences X times faster",
    )
    replay_by: str = setting(
        "time",
        group="record",
        choices=("time", "polls"),
        help="walk a recorded sequence by time (recorded offsets / speed) or by poll count",
    )
    replay_miss: str = setting(
        "synthetic",
        group="record",
        choices=("synthetic", "error"),
        help="a submit that matches no recording: the engine, or a 404 naming the "
        "closest recorded request",
    )
    replay_ignore: tuple[str, ...] = setting(
        (),
        group="record",
        metavar="FIELD",
        help="leave this top-level body field out of matching (repeatable), e.g. seed",
    )
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    """The engine's own options by name (``{"checkout": Path("~/Ovi")}`` for ovi);
    unset ones come from ``WAVESPEED_MOCK_<ENGINE>_<OPTION>``, then the default.
    Not a setting of its own: each engine's options are ``--<engine>-<option>``."""

    def __post_init__(self) -> None:
        # Every time the server accepts is bounded: a wait or timeout of 0, a
        # negative one, NaN or one of centuries is a typo, not a wish.
        for name, (largest, zero_is_off) in _BOUNDED_SECONDS.items():
            if getattr(self, name) is None:  # the engine's default, chosen at assembly
                continue
            value = float(getattr(self, name))
            if not (0 < value <= largest or (zero_is_off and value == 0)):
                off = " or 0 to turn it off" if zero_is_off else ""
                raise SettingsError(
                    f"the setting {name} is {value!r}: give seconds in "
                    f"(0, {largest:.0f}]{off}"
                )
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError(
                f"the setting workers is {self.workers}: give 1 to {MAX_WORKERS} processes"
            )
        if self.outputs and not self.outputs.startswith("s3://"):
            raise SettingsError(
                f"the setting outputs takes an s3://bucket/prefix URL, not {self.outputs!r}"
            )
        if self.database and not is_database_url(self.database):
            raise SettingsError(
                "the setting database takes a postgresql://user@host:port/name URL "
                "(without it, the state is state.sqlite3 in the data dir)"
            )

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

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


def parse_bool(raw: str) -> bool:
    """A boolean from its text form: 1/true/yes/on or 0/false/no/off/"" (any case).

    The one reading of a boolean variable: settings and engine options use it.

    Raises:
        ValueError: anything else.
    """
    lowered = raw.strip().lower()
    if lowered not in _TRUE | _FALSE:
        raise ValueError(f"{raw!r} is not true or false")
    return lowered in _TRUE


def flag_of(f: dataclasses.Field[Any]) -> str:
    """The ``serve`` flag of a :class:`Settings` field."""
    flag: str | None = f.metadata.get("flag")
    return flag or "--" + f.name.replace("_", "-")


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The fields of :class:`Settings` that are settings (all but engine_options)."""
    return [f for f in dataclasses.fields(Settings) if "help" in f.metadata]


def _parse(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("bool"):
            return parse_bool(raw)
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
