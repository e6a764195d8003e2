"""The record/replay feature as the server holds it: a player, a recorder, or both.

``--replay`` alone plays a cassette back; ``--record`` with ``--upstream`` records
one through the proxy; both on the same cassette (record mode ``new``) play what
is recorded and record what is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ....contracts import Catalogue, builtin_catalogue
from ...core.clock import ServerClock
from ...core.images import ImageLoader
from ...settings import Settings, SettingsError
from .cassette import Cassette
from .images import local_images
from .player import REPLAY_BY, REPLAY_MISS, CassettePlayer
from .proxy import RecordingProxy
from .recorder import CassetteRecorder
from .upstream import Upstream

__all__ = ["CassetteDeck"]


@dataclass
class CassetteDeck:
    """What answers from or into a cassette, ahead of the mock's own routes."""

    cassette: Cassette
    player: CassettePlayer | None = None
    proxy: RecordingProxy | None = None
    miss: str = "synthetic"
    """What a replay does with a submit no recording matches (without a proxy)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: ServerClock,
        images: ImageLoader | None = None,
        catalogue: Catalogue | None = None,
    ) -> CassetteDeck | None:
        """The deck ``settings`` ask for, or None when neither record nor replay is set.

        Raises:
            SettingsError: an option without its partner, or a value out of range.
            CassetteError: ``replay`` names no readable cassette.
        """
        record, replay = settings.record, settings.replay
        if record is None and replay is None:
            if settings.upstream:
                raise SettingsError("--upstream needs --record CASSETTE")
            return None
        if record is not None and replay is not None and Path(record) != Path(replay):
            raise SettingsError(
                f"--record {str(record)!r} and --replay {str(replay)!r} name different "
                "cassettes; give both the same path to replay it and record what it "
                "lacks (record mode 'new')"
            )
        if settings.replay_miss not in REPLAY_MISS:
            raise SettingsError(
                f"--replay-miss must be one of {', '.join(REPLAY_MISS)}, "
                f"got {settings.replay_miss!r}"
            )
        if settings.replay_by not in REPLAY_BY:
            raise SettingsError(
                f"--replay-by must be one of {', '.join(REPLAY_BY)}, "
                f"got {settings.replay_by!r}"
            )
        if not settings.replay_speed > 0:
            raise SettingsError(
                f"--replay-speed must be above 0, got {settings.replay_speed!r}"
            )
        root = Path(record or replay)  # type: ignore[arg-type]
        cassette = (
            Cassette.load(root)
            if replay is not None or Cassette.exists(root)
            else Cassette(root, upstream=None)
        )
        deck = cls(cassette=cassette, miss=settings.replay_miss)
        if replay is not None:
            deck.player = CassettePlayer(
                cassette,
                clock=clock,
                speed=settings.replay_speed,
                by=settings.replay_by,
                ignore=settings.replay_ignore,
                local_images=local_images(images) if images is not None else None,
            )
        if record is not None:
            if not settings.upstream:
                raise SettingsError(
                    "--record needs --upstream URL (e.g. https://api.wavespeed.ai)"
                )
            try:
                upstream = Upstream(
                    settings.upstream,
                    max_output_bytes=settings.record_max_output_bytes,
                )
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
            cassette.upstream = upstream.base_url
            recorder = CassetteRecorder(
                cassette, clock=clock, max_submits=settings.record_max_submits
            )
            deck.proxy = RecordingProxy(
                upstream, recorder, (catalogue or builtin_catalogue()).for_path
            )
        return deck

    def reset(self) -> None:
        if self.player is not None:
            self.player.reset()

    async def aclose(self) -> None:
        if self.proxy is not None:
            await self.proxy.aclose()
