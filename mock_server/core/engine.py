"""The engine interface: what renders a clip for a prediction.

The server owns this seam. An engine turns a :class:`RenderJob` into an MP4 at
``job.output_path`` and reports a :class:`RenderResult`. ``render`` blocks; the
server runs it off the request path, at most ``max_concurrency`` at a time.
Engines are found by name: the built-in ones, then the ``wavespeed_mock.engines``
entry-point group for third-party engines.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from ...contracts.errors import WavespeedMockError

__all__ = [
    "BUILTIN_ENGINES",
    "ENGINE_ENTRY_POINT_GROUP",
    "Engine",
    "EngineError",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "UnknownEngineError",
    "available_engines",
    "load_engine_class",
]

ENGINE_ENTRY_POINT_GROUP = "wavespeed_mock.engines"
BUILTIN_ENGINES: dict[str, str] = {
    "synthetic": "wavespeed_mock.mock_server.synthetic_engine:SyntheticEngine",
    "ovi": "wavespeed_mock.real_engine:OviEngine",
}


@dataclass(frozen=True)
class RenderJob:
    """Everything an engine needs to render one prediction."""

    prediction_id: str
    model: str
    prompt: str
    seed: int
    """The resolved seed: never -1 (the server draws one for -1)."""
    width: int | None
    """Output width for text-to-video; None lets an image decide (image-to-video)."""
    height: int | None
    output_path: Path
    image: bytes | None = None
    """Encoded image bytes (PNG, JPEG, WebP) for image-to-video, else None."""
    image_source: str = ""
    """Where the image came from (a URL, ``data:``, an upload), for messages."""
    extra: dict[str, Any] = field(default_factory=dict)


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


class EngineError(WavespeedMockError, RuntimeError):
    """An engine could not start or is misconfigured."""


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
    """Renders clips. Implementations are constructed with ``Engine(settings)``."""

    name: ClassVar[str]
    max_concurrency: ClassVar[int]
    """How many renders may run at once (the synthetic engine: the cores; a GPU: 1)."""
    reports_progress: ClassVar[bool]
    """True if ``processing`` should mean the engine has really started the job."""

    def render(self, job: RenderJob) -> RenderResult:
        """Render ``job`` to ``job.output_path``; raise :class:`RenderFailed` on failure."""
        ...

    def close(self) -> None:
        """Release what the engine holds (worker processes, GPU memory)."""
        ...


def available_engines() -> dict[str, str]:
    """Engine names and their ``module:Class`` targets, built-ins first."""
    found = dict(BUILTIN_ENGINES)
    for ep in entry_points(group=ENGINE_ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def load_engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name``.

    Raises:
        UnknownEngineError: listing the known names.
    """
    import importlib

    engines = available_engines()
    if name not in engines:
        raise UnknownEngineError(name, sorted(engines))
    module_name, _, attr = engines[name].partition(":")
    module = importlib.import_module(module_name)
    engine_class: type[Engine] = getattr(module, attr)
    return engine_class


class UnknownEngineError(EngineError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"Unknown engine {name!r}.{hint} Known engines: {', '.join(known)}. "
            f"Third-party engines register in the {ENGINE_ENTRY_POINT_GROUP!r} "
            "entry-point group."
        )
