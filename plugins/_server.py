"""The live server the fixtures hand out, and the factory that keeps them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..mock_server.core.service import SETTLE_TIMEOUT_S
from ..mock_server.http.live import LiveServer
from ..mock_server.settings import CONTROL_PREFIX, Settings
from ._renders import wait_for_renders
from .verification import Received

__all__ = ["ServerFactory", "WavespeedServer"]

# Settings a running server can change per test through its control API.
RUNTIME_OPTIONS = frozenset({"profile", "virtual_clock"})
DEFAULT_API_KEY = "wavespeed-test-key"


class WavespeedServer(Received):
    """A running mock server, as a test sees it.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:54321``.
        api_key: a key the server accepts.
        service: the in-process server core (predictions, clock, engine).
    """

    def __init__(self, live: LiveServer, api_key: str) -> None:
        self._live = live
        self.url = live.url
        self.api_key = api_key
        self.service = live.service
        token = live.settings.control_token
        self._control = httpx.Client(
            base_url=self.url + CONTROL_PREFIX,
            headers={"Authorization": f"Bearer {token}"} if token else None,
            timeout=30,
        )

    # -- control -----------------------------------------------------------------
    # The server runs in this process, so these call its service directly: the
    # fixture does this before every test, and the HTTP round trips of the
    # control API (which the control API's own tests cover) would only add time.

    def reset(self) -> None:
        """Forget every prediction; the render cache stays."""
        self._live.mock.reset()

    def set_profile(self, profile: str) -> None:
        """``instant``, ``fast``, ``realistic``, ``polls:N`` or ``engine``."""
        self.service.set_profile(profile)

    def use_virtual_clock(self) -> None:
        """Freeze the clock; move it with :meth:`advance`."""
        self.service.clock.freeze()
        self.service.time_changed()

    def use_real_clock(self) -> None:
        self.service.clock.unfreeze()
        self.service.time_changed()

    def scenario(self, scope: str = "global", **fields: Any) -> dict[str, Any]:
        """Set a scenario for this test; the next reset (next test) clears it.

        ``scope`` is ``global``, ``key`` (with ``api_key=``), ``next`` (with
        ``count=``) or ``named`` (with ``name=``, chosen per request by the
        ``X-Wavespeed-Mock-Scenario`` header); the fields are those of
        docs/scenarios.md.

        Example:
            >>> wavespeed_server.scenario(lost_answer="reset")
            >>> wavespeed_server.scenario("next", count=2, submit_error=503)

        Raises:
            ScenarioError: the server refuses the scenario (the message says why).
        """
        from ._scenarios import set_scenario

        return set_scenario(self._live.mock, scope, **fields)

    def returns(
        self,
        model: str,
        *outputs: str | bytes | os.PathLike[str],
        match: dict[str, Any] | None = None,
        times: int | None = None,
    ) -> dict[str, Any]:
        """Say what ``model`` returns for matching requests, for this test.

        Each output is a file (a path, or bytes with the format read from their
        first bytes) or a URL (a string starting ``http``), handed out as it is.
        ``match`` keeps the rule to bodies holding those fields; ``times`` to
        that many tasks. The newest matching rule wins; the next reset clears
        it. Files must be of the model's output kind.

        Example:
            >>> wavespeed_server.returns("wavespeed-ai/z-image/turbo", Path("cat.png"))
            >>> wavespeed_server.returns(T2V, "https://cdn.example.com/a.mp4", times=1)

        Raises:
            ApiError: the server refuses the rule (the message names the field).
        """
        from ._outputs import output_rule

        rule = self._live.mock.features.outputs.add(
            output_rule(model, outputs, match=match, times=times)
        )
        said: dict[str, Any] = rule.as_json()
        return said

    def advance(
        self,
        seconds: float,
        *,
        settle: bool = True,
        timeout_s: float = SETTLE_TIMEOUT_S,
    ) -> None:
        """Move the virtual clock forward (switching to one first), then settle.

        Returns once everything due by the new time has happened (see
        :meth:`settle`): after ``advance(10)`` under the ``fast`` profile a poll
        says ``completed``, even if the real render took longer than the jump.
        ``settle=False`` only moves the clock.
        """
        self.service.clock.freeze().advance(seconds)
        self.service.time_changed()
        if settle:
            self.settle(timeout_s=timeout_s)

    def settle(self, *, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Wait until every render and webhook attempt due by the clock's time is done.

        Raises:
            SettleTimeout: something due was still under way after ``timeout_s``
                seconds of real time.
        """
        future = asyncio.run_coroutine_threadsafe(
            self.service.settle(timeout_s), self.service.loop
        )
        future.result(timeout_s + 30)  # settle() bounds itself; this is a backstop

    def point_sdk(self) -> contextlib.AbstractContextManager[Any]:
        """Point the SDK's module-level functions at this server in a ``with`` block.

        ``wavespeed.run(...)`` and ``wavespeed.Client()`` reach this server inside
        the block; the SDK's configuration and cached client are restored after.
        The ``wavespeed_sdk`` fixture does this for a whole test.
        """
        from ._sdk import sdk_pointed_at

        return sdk_pointed_at(self.url, self.api_key)

    def webhook_secret(self) -> str:
        """The secret the server signs this server's ``api_key``'s webhooks with."""
        from ..mock_server.core.keys import key_id

        # Secrets are kept by key id (keys are stored hashed).
        return self._live.features.webhooks.secrets.secret_for(key_id(self.api_key))

    def wait_for_renders(self, timeout: float = 120.0) -> None:
        """Return once every render queued so far has finished or failed.

        A poll never waits for a render: under ``instant`` and ``polls:N`` a clip
        still rendering reads ``processing``. Call this before asserting an
        exact sequence of statuses.
        """
        wait_for_renders(self.service, timeout)

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """Stored predictions with their statuses and the seeds the server used."""
        response = self._control.get("/predictions")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["data"]["items"]
        return items

    def webhook_log(
        self,
        prediction_id: str | None = None,
        *,
        blocked: bool | None = None,
        at_least: int = 0,
        timeout_s: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Webhook delivery attempts, oldest first, as ``GET /_mock/webhooks`` lists them.

        A delivery to a host that is not allowed (loopback only unless the
        ``webhook_allow`` setting says more) is not sent: its entry has
        ``blocked`` True, the ``reason``, and the ``body`` (JSON text) and signed
        ``headers`` it would have carried. Deliveries happen after a task ends,
        so ``at_least`` waits (up to ``timeout_s``) for that many entries.

        Example:
            >>> [entry] = wavespeed_server.webhook_log(pid, blocked=True, at_least=1)
            >>> json.loads(entry["body"])["status"]
            'completed'

        Raises:
            AssertionError: fewer than ``at_least`` entries came in time.
        """
        __tracebackhide__ = True
        log = self._live.features.webhooks.log
        deadline = time.monotonic() + timeout_s
        while True:
            entries = [
                e
                for e in log.attempts(prediction_id)
                if blocked is None or e["blocked"] is blocked
            ]
            if len(entries) >= at_least:
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected at least {at_least} webhook log entries "
                    f"(prediction {prediction_id!r}, blocked={blocked!r}) within "
                    f"{timeout_s:g} s; found {len(entries)}: {entries!r}"
                )
            time.sleep(0.01)

    @property
    def contract_violations(self) -> list[str]:
        """Answers this server sent that break the contract (should stay empty)."""
        return self.service.contract_violations

    def close(self) -> None:
        self._control.close()
        self._live.stop()

    def __repr__(self) -> str:
        return f"<WavespeedServer {self.url}>"


class ServerFactory:
    """Starts servers on demand, one per distinct start-up configuration.

    Servers share one render cache, so a test session pays for each clip once.
    """

    def __init__(self, root: Path, cache_dir: Path | None = None) -> None:
        self.root = root
        self.cache_dir = cache_dir or root / "cache"
        self._servers: dict[tuple[tuple[str, Any], ...], WavespeedServer] = {}
        self._lock = threading.Lock()

    def get(self, options: dict[str, Any], *, name: str = "") -> WavespeedServer:
        """The server for these start-up ``options``, started on first use.

        ``name`` keeps apart servers with the same options (the session-scoped
        fixtures' server is not the one the per-test fixtures reset).
        """
        startup = {k: v for k, v in options.items() if k not in RUNTIME_OPTIONS}
        key = (("", name), *sorted((k, _hashable(v)) for k, v in startup.items()))
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                data_dir = self.root / f"server-{len(self._servers)}"
                settings = Settings(
                    **{
                        "port": 0,
                        "profile": "instant",
                        "check_responses": True,
                        "cache_dir": self.cache_dir,
                        "data_dir": data_dir,
                        **startup,
                    }
                )
                keys = settings.api_keys
                api_key = keys[0] if keys else DEFAULT_API_KEY
                server = WavespeedServer(LiveServer(settings).start(), api_key)
                self._servers[key] = server
            return server

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
