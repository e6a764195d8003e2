"""The engine interface: what renders a clip for a prediction.

The server owns this seam. An engine turns a :class:`RenderJob` into an MP4 at
``job.output_path`` and reports a :class:`RenderResult`. ``render`` blocks; the
server runs it off the request path, at most ``max_concurrency`` at a time.

Engines are found through the ``wavespeed_mock.engines`` entry-point group only
(the synthetic and Ovi engines register there like any third-party engine), and
each one declares its own options (:class:`EngineOption`): the command line
offers them as ``--<engine>-<option>``, the environment as
``WAVESPEED_MOCK_<ENGINE>_<OPTION>``, and the engine receives their values in
:meth:`Engine.from_settings`. The server itself knows no engine by name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ...contracts import OutputPlan, did_you_mean
from ...contracts.errors import WavespeedMockError
from ..settings import DEFAULT_MAX_IMAGE_PIXELS, parse_bool

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ENGINE_ENTRY_POINT_GROUP",
    "INTERNAL_ERROR",
    "CachedRenderer",
    "Engine",
    "EngineError",
    "EngineOption",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "TrimmableCache",
    "UnknownEngineError",
    "available_engines",
    "device_names",
    "engine_option_values",
    "load_engine",
    "load_engine_class",
    "unknown_option",
]

ENGINE_ENTRY_POINT_GROUP = "wavespeed_mock.engines"
ENV_PREFIX = "WAVESPEED_MOCK_"


@dataclass(frozen=True)
class RenderJob:
    """Everything an engine needs to render one prediction."""

    prediction_id: str
    model: str
    prompt: str
    """The text the output derives from (the prompt, a TTS text)."""
    seed: int
    """The resolved seed: never the random-seed value (the server draws one)."""
    width: int | None
    """Output width for text-to-video; None lets an image decide (image-to-video)."""
    height: int | None
    output_path: Path
    """Where the clip goes: an absolute path in the server's data folder."""
    image: bytes | None = None
    """Encoded image bytes for image-to-video (a format of the contract's
    ``x-image-formats``), else None."""
    image_digest: str | None = None
    """Hex SHA-256 of ``image``, computed once when the image came in."""
    image_source: str = ""
    """Where the image came from (a URL, ``data-uri``, an upload), for messages."""
    on_start: Callable[[], None] | None = None
    """Called by an engine that ``reports_progress`` when it really starts the job."""
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    """The server's pixel limit: an engine checks ``image`` against it
    (``contracts.probe_image``) before decoding."""
    plan: OutputPlan | None = None
    """What to make (kind, format, size, length, count); None: an Ovi clip.
    ``plan.count`` files go to ``output_path`` and then ``<id>-1.<ext>``, ... beside it."""
    engine_model: str | None = None
    """The model family the catalogue entry names for real engines (``ovi``)."""


@dataclass(frozen=True)
class RenderResult:
    """What an engine reports after writing the clip."""

    inference_ms: int
    """Measured generation time, reported as ``timings.inference``."""
    nsfw: tuple[bool, ...] = (False,)
    """One flag per output, reported as ``has_nsfw_contents``."""
    output_path: Path | None = None
    """Where the clip is when the engine keeps it elsewhere than ``job.output_path``
    (the synthetic engine's cache); the server then serves it from there."""
    device: str | None = None
    """The device it ran on (``cuda:0``), shown by ``GET /_mock/predictions``."""
    kept_as: str | None = None
    """The key under which the first output is in the object store already (a
    clip of a render cache shared through the bucket), so the server copies it
    there as the task's output instead of sending its bytes again."""


def device_names(engine: object) -> tuple[str, ...]:
    """The devices an engine renders on, as its results name them (the Ovi
    engine's ``device_names``: ``cuda:0``, ...); none for an engine without."""
    names = getattr(engine, "device_names", ())
    return tuple(str(n) for n in names)


@runtime_checkable
class TrimmableCache(Protocol):
    """An engine whose cache of clips the server bounds (the synthetic engine's)."""

    def trim_cache(
        self, max_bytes: int, release: Callable[[Sequence[Path]], None]
    ) -> tuple[int, int]:
        """Delete least recently used clips until at most ``max_bytes`` are kept.

        ``release(paths)`` is called with the clips about to go, before they are
        deleted, so the server can keep what its predictions still point at.
        Returns how many files and bytes were deleted. Blocking.
        """
        ...


@dataclass(frozen=True)
class EngineOption:
    """One setting an engine takes, offered on the command line and in the environment.

    ``name`` is the engine's own (``checkout``); the flag is ``--ovi-checkout`` and
    the variable ``WAVESPEED_MOCK_OVI_CHECKOUT`` for the engine named ``ovi``.
    """

    name: str
    type: type[Any]
    """``str``, ``int``, ``float``, ``bool`` or ``Path``."""
    default: Any
    help: str

    def parse(self, raw: str) -> Any:
        """A value from its text form (a flag or an environment variable)."""
        if self.type is bool:
            return parse_bool(raw)
        return self.type(raw)


class EngineError(WavespeedMockError, RuntimeError):
    """An engine could not start or is misconfigured."""


INTERNAL_ERROR = 5000
"""The task code of a render cut short by the server itself (an engine bug, a
file store that cannot answer), not by its input."""


class RenderFailed(WavespeedMockError, RuntimeError):
    """A render that failed; the prediction ends ``failed`` with ``code``.

    ``code`` is one of the API's task error codes (1402 media access, 1403/1405
    execution, 5000 internal, 5003 unavailable, 5004 timeout).
    """

    def __init__(self, message: str, *, code: int = 1405) -> None:
        self.code = code
        super().__init__(message)


@runtime_checkable
class Engine(Protocol):
    """Renders clips. Built by the server with :meth:`from_settings`."""

    name: ClassVar[str]
    max_concurrency: ClassVar[int]
    """How many renders may run at once (the synthetic engine: the cores; a GPU: 1)."""
    reports_progress: ClassVar[bool]
    """True if ``processing`` should mean the engine has really started the job
    (it then calls ``job.on_start``)."""
    options: ClassVar[tuple[EngineOption, ...]]
    """The engine's own settings (see :class:`EngineOption`)."""
    default_profile: ClassVar[str | None]
    """The timing profile the engine implies when none is chosen (None: the server's)."""
    default_sync_wait_s: ClassVar[float | None]
    """How long a sync-mode submit waits when ``--sync-wait`` is not given (None:
    the server's 90 s); a real model's clip can take minutes."""

    @classmethod
    def from_settings(cls, settings: Settings, options: Mapping[str, Any]) -> Engine:
        """The engine for ``settings``; ``options`` holds a value for each option."""
        ...

    def render(self, job: RenderJob) -> RenderResult:
        """Render ``job`` to ``job.output_path``; raise :class:`RenderFailed` on failure."""
        ...

    def close(self) -> None:
        """Release what the engine holds (worker processes, GPU memory)."""
        ...


@runtime_checkable
class CachedRenderer(Protocol):
    """An engine that can answer some jobs at once, from clips it already has."""

    def render_cached(self, job: RenderJob) -> RenderResult | None:
        """The finished clip without rendering (a file lookup), or None on a miss.

        Called on the submit path: it must be cheap and must not block on I/O
        beyond a file lookup.
        """
        ...


def available_engines() -> dict[str, str]:
    """Engine names and their ``module:Class`` targets, from the entry points."""
    return {ep.name: ep.value for ep in entry_points(group=ENGINE_ENTRY_POINT_GROUP)}


def load_engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name``.

    Raises:
        UnknownEngineError: listing the known names.
    """
    engines = available_engines()
    if name not in engines:
        raise UnknownEngineError(name, sorted(engines))
    module_name, _, attr = engines[name].partition(":")
    module = importlib.import_module(module_name)
    engine_class: type[Engine] = getattr(module, attr)
    return engine_class


def engine_option_values(
    engine_class: type[Engine],
    given: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every option of ``engine_class``: given, else from the environment, else default.

    Raises:
        EngineError: an option the engine does not declare, or a bad value.
    """
    env = os.environ if environ is None else environ
    declared = {option.name: option for option in engine_class.options}
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise unknown_option(engine_class.name, unknown[0], list(declared))
    values: dict[str, Any] = {}
    for name, option in declared.items():
        if given.get(name) is not None:
            values[name] = given[name]
            continue
        variable = f"{ENV_PREFIX}{engine_class.name}_{name}".upper()
        raw = env.get(variable)
        if raw is None:
            values[name] = option.default
            continue
        try:
            values[name] = option.parse(raw)
        except ValueError as exc:
            raise EngineError(
                f"{variable}={raw!r} is not a valid {option.type.__name__} ({exc})"
            ) from None
    return values


def unknown_option(engine: str, name: str, known: list[str]) -> EngineError:
    """The error for an option ``name`` that the engine does not declare."""
    hint = did_you_mean(name, known)
    return EngineError(
        f"The {engine!r} engine has no option {name!r}"
        + (f"; did you mean {hint!r}?" if hint else "")
        + f" Its options: {', '.join(known) or 'none'}."
    )


def load_engine(settings: Settings) -> Engine:
    """The engine ``settings.engine`` names, built with its option values."""
    engine_class = load_engine_class(settings.engine)
    values = engine_option_values(engine_class, settings.engine_options)
    return engine_class.from_settings(settings, values)


class UnknownEngineError(EngineError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        close = did_you_mean(name, known)
        hint = f" Did you mean {close!r}?" if close else ""
        super().__init__(
            f"Unknown engine {name!r}.{hint} Known engines: {', '.join(known)}. "
            f"Third-party engines register in the {ENGINE_ENTRY_POINT_GROUP!r} "
            "entry-point group."
        )
