"""The poll lane: ``GET /api/v3/predictions/{id}/result`` answered in one pass.

Polls are most of a client's traffic (the SDKs poll each task every 0.5 s to
1 s until it ends). Through the whole app a poll meets six middlewares, the
router, Starlette's request and response objects and three wrapped ``send``
callables: measured under wrk at 16 connections on this machine, about 100 us
of server CPU a poll, where a bare ASGI app under the same uvicorn spends 32 us
(docs/performance.md). The lane is the outermost middleware but the access log
and answers the poll itself, with the very components the stack would use: the
Host rule (:class:`~.guards.HostRule`), the Bearer reading
(:func:`~..core.keys.bearer_key`), :meth:`MockService.poll`, the journal's
entry (:func:`~.journal.journal_entry`) and the envelope's encoder.

It answers only the plain case, and hands every other request to the stack
untouched, before doing anything: another route or method, an ``/api/v2``
path (the version layer rewrites it), a Host the rule refuses, no key or an
unknown one, an id the route would not take, a scenario in play (the wire layer
decides), and any poll the service refuses (an unknown id, another key's task:
the stack then answers the error, reading the row again, which only an error
pays). Features that must see every answer keep the lane out of the app
altogether (:func:`wanted`): the response check and record/replay.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.journal import Journal, SharedJournal
from ..core.keys import bearer_key
from ..core.service import MockService
from ..errors import ApiError
from ..settings import Settings
from .guards import HostRule
from .journal import journal_entry
from .responses import encode_envelope

__all__ = ["PollLane", "wanted"]

_PREFIX = "/api/v3/predictions/"
_SUFFIX = "/result"
_JSON = [(b"content-type", b"application/json")]


def wanted(settings: Settings, *, recording: bool) -> bool:
    """Whether the app gets the lane: not when every answer must pass the
    response check, or the record/replay layer must see every request."""
    return not (settings.check_responses or recording)


class PollLane:
    """Answers a plain result poll in one pass; everything else goes to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: MockService,
        settings: Settings,
        journal: Journal | SharedJournal,
        id_shape: re.Pattern[str],
        fixed: frozenset[str],
    ) -> None:
        self.app = app
        self.service = service
        self.hosts = HostRule.from_settings(settings)
        self.accepted = frozenset(settings.api_keys)
        self.journal = journal
        self.id_shape = id_shape
        """The route's id shape (``PREDICTION_ID``)."""
        self.fixed = fixed
        """The fixed names under ``/api/v3/predictions/`` no id may take."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prediction_id = self._plain_poll(scope)
        if prediction_id is None:
            await self.app(scope, receive, send)
            return
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        try:
            answer = await self.service.poll(prediction_id, key)
        except ApiError:  # the stack answers it, as every error
            await self.app(scope, receive, send)
            return
        body = encode_envelope(answer)
        kept = self.journal.append(journal_entry(scope, 200))
        if kept is not None:  # a shared journal: in before the answer leaves
            await kept
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body)), *_JSON],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _plain_poll(self, scope: Scope) -> str | None:
        """The id of a plain v3 result poll (None: not one the lane takes)."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            return None
        prediction_id = path[len(_PREFIX) : -len(_SUFFIX)]
        faults = self.service.faults
        if (
            not self.id_shape.fullmatch(prediction_id)
            or prediction_id in self.fixed
            or (faults is not None and not faults.idle())
        ):
            return None
        return prediction_id

    def _key(self, scope: Scope) -> str | None:
        """The request's API key when its Host is served and its key accepted."""
        host = authorization = None
        for name, value in scope["headers"]:
            # As the stack reads them: the guard the last Host, the routes the
            # first Authorization.
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
        if host is not None and not self.hosts.allows(host):
            return None
        key = bearer_key(authorization or "")
        if not key or (self.accepted and key not in self.accepted):
            return None
        return key
