"""Record and replay: real API runs captured once in a cassette, played back for ever."""

from __future__ import annotations

from .answers import RECORDED_OUTPUTS_PATH
from .cassette import (
    CASSETTE_FORMAT,
    FORMAT_VERSION,
    Cassette,
    CassetteError,
    Exchange,
    OutputFile,
    RecordedTask,
)
from .deck import CassetteDeck
from .player import REPLAY_BY, REPLAY_MISS, REPLAY_MISS_CODE, CassettePlayer
from .recorder import RECORD_CAP_CODE, CassetteRecorder
from .redact import Redactor
from .routes import CassetteMiddleware
from .violations import exchange_violations

__all__ = [
    "CASSETTE_FORMAT",
    "FORMAT_VERSION",
    "RECORDED_OUTPUTS_PATH",
    "RECORD_CAP_CODE",
    "REPLAY_BY",
    "REPLAY_MISS",
    "REPLAY_MISS_CODE",
    "Cassette",
    "CassetteDeck",
    "CassetteError",
    "CassetteMiddleware",
    "CassettePlayer",
    "CassetteRecorder",
    "Exchange",
    "OutputFile",
    "RecordedTask",
    "Redactor",
    "exchange_violations",
]
