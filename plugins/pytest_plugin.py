"""The pytest plugin, registered through the ``pytest11`` entry point as ``wavespeed``.

Fixtures (every name starts with ``wavespeed``):

- ``wavespeed_server``: a live mock server on a free loopback port, shared by the
  session (one per xdist worker), reset before each test, ``instant`` profile.
- ``wavespeed_client``: an official ``wavespeed.Client`` pointed at that server.
- ``wavespeed_sdk``: the SDK's module-level functions (``wavespeed.run``) pointed
  at that server for the test, restored after.
- ``wavespeed_webhooks``: a loopback receiver of webhook deliveries that verifies
  their signatures.
- ``wavespeed_httpx``: in-process routing of httpx calls to https://api.wavespeed.ai.
- ``wavespeed_settings``: the settings those use; override it in a conftest.py.
- ``wavespeed_session_server``, ``wavespeed_session_client``,
  ``wavespeed_session_httpx``: session-scoped, for Hypothesis ``@given`` tests.

Configure one test with ``@pytest.mark.wavespeed(profile="polls:3", strict=True)``;
replay or record a run with ``@pytest.mark.wavespeed(cassette=..., record_mode=...)``.
The module is light to import: fixtures import the server, httpx and the SDK
only when a test uses them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..mock_server.settings import Settings
    from ._routing import InProcessApp, InProcessRouter, RequestsRouter
    from ._server import ServerFactory, WavespeedServer
    from ._webhooks import WebhookReceiver

_FACTORY = pytest.StashKey["ServerFactory"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wavespeed", "wavespeed-mock")
    group.addoption(
        "--wavespeed-base-url",
        default=None,
        help="add a test that runs the wavespeed contract check against this base "
        "URL (the mock, the real API, or a server running the real engine)",
    )
    group.addoption(
        "--wavespeed-api-key",
        default=None,
        help="API key for --wavespeed-base-url (default: $WAVESPEED_API_KEY)",
    )
    group.addoption(
        "--wavespeed-max-spend",
        type=float,
        default=None,
        help="most dollars the contract check may spend (default: one clip per model)",
    )
    group.addoption(
        "--wavespeed-upstream",
        default=None,
        help="the API a wavespeed cassette records from (record_mode once/new), "
        "e.g. https://api.wavespeed.ai",
    )
    group.addoption(
        "--wavespeed-models",
        nargs="+",
        default=None,
        help="models the contract check covers (default: every registered model)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wavespeed(**options): configure the wavespeed mock for this test: Settings "
        "fields (profile='polls:3', strict=True, api_keys=('k',), virtual_clock=True) "
        "and scenarios=[{...}, ...] (docs/scenarios.md); "
        "cassette='cassettes/run', record_mode='none'|'once'|'new' replays or "
        "records a run (docs/record-replay.md); catalogue='models.json' (or a "
        "list) serves those models too (docs/catalogue.md)",
    )


# Marker arguments that are not Settings fields: each is taken out of the
# marker's keywords and handed to the fixture that applies it.
MARKER_ARGUMENTS = frozenset({"scenarios"})


def pytest_unconfigure(config: pytest.Config) -> None:
    factory = config.stash.get(_FACTORY, None)
    if factory is not None:
        factory.close()


# -- the contract check as a test item --------------------------------------------


class WavespeedContractItem(pytest.Item):
    """One test that runs the contract check against ``--wavespeed-base-url``."""

    def runtest(self) -> None:
        from .check import run_contract_check

        options = self.config.option
        report = run_contract_check(
            options.wavespeed_base_url,
            options.wavespeed_api_key or os.environ.get("WAVESPEED_API_KEY", ""),
            models=options.wavespeed_models,
            max_spend=options.wavespeed_max_spend,
        )
        self.user_properties.append(("wavespeed_contract_report", report.render()))
        for finding in report.findings:
            if finding.level == "warning":
                import warnings

                warnings.warn(
                    f"wavespeed contract check: {finding.name}: {finding.detail}",
                    UserWarning,
                    stacklevel=1,
                )
        if not report.ok:
            raise WavespeedContractFailure(report.render())

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str:
        if isinstance(excinfo.value, WavespeedContractFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return (
            "wavespeed-contract",
            None,
            f"wavespeed contract check: {self.config.option.wavespeed_base_url}",
        )


class WavespeedContractFailure(AssertionError):
    pass


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.option.wavespeed_base_url:
        items.append(
            WavespeedContractItem.from_parent(session, name="wavespeed_contract_check")
        )


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wavespeed_server_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ServerFactory:
    """Starts live servers on demand, one per start-up configuration, for the session."""
    from ._server import ServerFactory

    config = request.config
    factory = config.stash.get(_FACTORY, None)
    if factory is None:
        # WAVESPEED_MOCK_CACHE_DIR keeps rendered clips across sessions.
        cache = os.environ.get("WAVESPEED_MOCK_CACHE_DIR")
        factory = ServerFactory(
            tmp_path_factory.mktemp("wavespeed"), Path(cache) if cache else None
        )
        config.stash[_FACTORY] = factory
    return factory


@pytest.fixture
def wavespeed_settings() -> dict[str, Any]:
    """Settings for the mock; override in conftest.py to change them for a suite.

    Keys are :class:`wavespeed_mock.mock_server.Settings` fields, e.g.
    ``{"profile": "instant", "strict": True}``.
    """
    return {"profile": "instant"}


def _marker_options(
    request: pytest.FixtureRequest, base: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings for this test, and the marker's other arguments
    (:data:`MARKER_ARGUMENTS`); the closest marker wins."""
    settings = dict(base)
    arguments: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("wavespeed"))):
        if marker.args:
            raise pytest.UsageError(
                "@pytest.mark.wavespeed takes keyword arguments only"
            )
        for name, value in marker.kwargs.items():
            if name == "catalogue" and isinstance(value, (str, os.PathLike)):
                value = (str(value),)  # one file, as a path
            elif name == "catalogue":
                value = tuple(str(v) for v in value)
            (arguments if name in MARKER_ARGUMENTS else settings)[name] = value
    return settings, arguments


RECORD_MODES = ("none", "once", "new")


def _cassette_settings(
    request: pytest.FixtureRequest, options: dict[str, Any]
) -> dict[str, Any]:
    """The marker's ``cassette=`` and ``record_mode=`` as ``Settings`` fields.

    ``none``: replay, a miss is an error; ``once``: replay an existing cassette,
    else record one; ``new``: replay what is recorded, record what is not.
    """
    cassette = options.pop("cassette", None)
    mode = options.pop("record_mode", None)
    upstream = options.pop("upstream", None) or request.config.option.wavespeed_upstream
    if cassette is None and mode is None:
        if upstream is not None and options.get("record") is not None:
            options["upstream"] = upstream
        return options
    from ..mock_server.features.replay import Cassette

    mode = mode or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(
            f"@pytest.mark.wavespeed(record_mode={mode!r}): expected one of "
            f"{', '.join(map(repr, RECORD_MODES))}"
        )
    path = Path(cassette or Path("cassettes") / request.node.name)
    if not path.is_absolute():
        path = Path(request.node.path).parent / path
    exists = Cassette.exists(path)
    if exists:
        options["replay"] = path
        options.setdefault("replay_miss", "error")
    if mode == "new" or (mode == "once" and not exists):
        if not upstream:
            pytest.fail(
                f"record_mode={mode!r} needs to record into {str(path)!r} but has "
                "no upstream: pass --wavespeed-upstream URL (e.g. "
                "https://api.wavespeed.ai) or upstream=... in the marker",
                pytrace=False,
            )
        options["record"] = path
        options["upstream"] = upstream
    elif not exists:
        pytest.fail(
            f"record_mode='none' and no cassette at {str(path)!r}: record it once "
            "with record_mode='once' and --wavespeed-upstream URL",
            pytrace=False,
        )
    return options


def _recording_api_key(config: pytest.Config) -> str | None:
    key: str | None = config.option.wavespeed_api_key or os.environ.get(
        "WAVESPEED_API_KEY"
    )
    return key


@pytest.fixture
def wavespeed_server(
    request: pytest.FixtureRequest,
    wavespeed_server_factory: ServerFactory,
    wavespeed_settings: dict[str, Any],
) -> Iterator[WavespeedServer]:
    """A live mock server, reset for this test, on the ``instant`` profile by default.

    Fails the test if the server sent an answer that breaks the contract.
    """
    options, arguments = _marker_options(request, wavespeed_settings)
    options = _cassette_settings(request, options)
    server = wavespeed_server_factory.get(options)
    if options.get("record") is not None:
        # A recording forwards the client's key upstream: the real one.
        server.api_key = _recording_api_key(request.config) or server.api_key
    server.reset()
    server.use_real_clock()
    server.set_profile(str(options.get("profile", "instant")))
    if options.get("virtual_clock"):
        server.use_virtual_clock()
    _apply_scenarios(server.scenario, arguments)
    yield server
    _fail_on_violations(server.contract_violations)


@pytest.fixture
def wavespeed_api_key(wavespeed_server: WavespeedServer) -> str:
    """An API key the live server accepts."""
    return wavespeed_server.api_key


@pytest.fixture
def wavespeed_client(wavespeed_server: WavespeedServer) -> Any:
    """An official ``wavespeed.Client`` pointed at the live server.

    Polls every 0.05 s and retries after 0.05 s instead of the SDK's 1 s.
    """
    from ._sdk import make_client

    return make_client(wavespeed_server.url, wavespeed_server.api_key)


@pytest.fixture
def wavespeed_sdk(wavespeed_server: WavespeedServer) -> Iterator[Any]:
    """The ``wavespeed`` module, its module-level functions pointed at the server.

    ``wavespeed.run(...)``, ``run_no_throw``, ``get_result``, ``upload`` and a
    ``wavespeed.Client()`` made without arguments reach ``wavespeed_server`` for
    this test; the SDK's configuration and its cached default client are restored
    afterwards, so nothing leaks into the next test or to another server.
    """
    with wavespeed_server.point_sdk() as sdk:
        yield sdk


@pytest.fixture
def wavespeed_webhooks(wavespeed_server: WavespeedServer) -> Iterator[WebhookReceiver]:
    """A loopback endpoint that receives webhook deliveries and verifies them.

    Submit with ``?webhook={wavespeed_webhooks.url}``; ``.wait_for(prediction_id)``
    returns the deliveries once they arrived; each is checked against the
    server's secret for ``wavespeed_server.api_key`` on the server's clock. A
    delivery that does not verify fails the test. Set ``.status = 500`` to make the
    receiver refuse and exercise the retries.
    """
    from ._webhooks import WebhookReceiver

    receiver = WebhookReceiver(
        wavespeed_server.webhook_secret(), now=wavespeed_server.service.clock.now
    )
    try:
        yield receiver
    finally:
        receiver.close()
    bad = receiver.unverified
    if bad:
        pytest.fail(
            "webhook deliveries that do not verify:\n"
            + "\n".join(f"  {d.prediction_id}: {d.error}" for d in bad)
        )


# -- session-scoped: for Hypothesis' @given ------------------------------------------
# Hypothesis runs many examples inside one test, so a function-scoped fixture is
# set up once for all of them (its function_scoped_fixture health check says so).
# These live for the session; an example that needs a clean server resets it.

_SESSION = "session"


@pytest.fixture(scope="session")
def wavespeed_session_server(
    wavespeed_server_factory: ServerFactory,
) -> Iterator[WavespeedServer]:
    """A live server for the whole session, apart from ``wavespeed_server``.

    For ``@given`` tests: call ``.reset()`` at the start of an example that must
    not see the others' predictions. ``instant`` profile, real clock, any key,
    and ``lazy_renders``: a clip is made only when downloaded, so examples that
    never download pay nothing for media;
    contract violations fail the session's last test that used it.
    """
    # Examples that never download pay nothing for media (lazy_renders).
    server = wavespeed_server_factory.get(
        {"profile": "instant", "lazy_renders": True}, name=_SESSION
    )
    yield server
    _fail_on_violations(server.contract_violations)


@pytest.fixture(scope="session")
def wavespeed_session_client(wavespeed_session_server: WavespeedServer) -> Any:
    """An official ``wavespeed.Client`` for ``wavespeed_session_server``."""
    from ._sdk import make_client

    return make_client(wavespeed_session_server.url, wavespeed_session_server.api_key)


@pytest.fixture(scope="session")
def wavespeed_session_httpx(
    wavespeed_server_factory: ServerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InProcessApp]:
    """The mock app in process for the session; route httpx per example.

    ``with wavespeed_session_httpx.routing() as router:`` answers httpx calls to
    https://api.wavespeed.ai inside the block (as ``wavespeed_httpx`` does for a
    whole test); ``.reset()`` forgets every prediction.
    """
    from ..mock_server.settings import Settings
    from ._routing import serve_in_process

    settings = Settings(
        profile="instant",
        lazy_renders=True,  # examples that never download pay nothing for media
        check_responses=True,
        cache_dir=wavespeed_server_factory.cache_dir,
        data_dir=tmp_path_factory.mktemp("wavespeed-session-httpx"),
    )
    with serve_in_process(settings) as app:
        yield app
        violations = list(app.service.contract_violations)
    _fail_on_violations(violations)


@pytest.fixture
def wavespeed_httpx(
    request: pytest.FixtureRequest,
    wavespeed_server_factory: ServerFactory,
    wavespeed_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[InProcessRouter]:
    """Answer httpx calls to https://api.wavespeed.ai in process, sync and async.

    Code under test keeps its base URL; no socket is opened; other hosts are not
    intercepted.
    """
    from ._routing import route_httpx

    settings, arguments = _in_process_settings(
        request, wavespeed_server_factory, wavespeed_settings, tmp_path_factory
    )
    with route_httpx(settings) as router:
        _apply_scenarios(router.scenario, arguments)
        yield router
        violations = list(router.service.contract_violations)
    _fail_on_violations(violations)


@pytest.fixture
def wavespeed_requests(
    request: pytest.FixtureRequest,
    wavespeed_server_factory: ServerFactory,
    wavespeed_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RequestsRouter]:
    """Answer ``requests`` calls to https://api.wavespeed.ai in process.

    The counterpart of ``wavespeed_httpx`` for code built on ``requests`` with
    the hard-coded URL (WaveSpeed's dify plugin, ComfyUI nodes, most scripts):
    it keeps its base URL, no socket is opened, other hosts are not intercepted.
    Needs ``responses`` (the ``requests`` extra).
    """
    from ._routing import route_requests

    settings, arguments = _in_process_settings(
        request, wavespeed_server_factory, wavespeed_settings, tmp_path_factory
    )
    with route_requests(settings) as router:
        _apply_scenarios(router.scenario, arguments)
        yield router
        violations = list(router.service.contract_violations)
    _fail_on_violations(violations)


def _in_process_settings(
    request: pytest.FixtureRequest,
    factory: ServerFactory,
    base: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, dict[str, Any]]:
    """The settings of an in-process fixture's mock (the marker's, no virtual
    clock), and the marker's other arguments."""
    from ..mock_server.settings import Settings

    options, arguments = _marker_options(request, base)
    options = _cassette_settings(request, options)
    options.pop("virtual_clock", None)
    settings = Settings(
        **{
            "profile": "instant",
            "check_responses": True,
            "cache_dir": factory.cache_dir,
            "data_dir": tmp_path_factory.mktemp("wavespeed-in-process"),
            **options,
        }
    )
    return settings, arguments


def _fail_on_violations(violations: Sequence[str]) -> None:
    """Fail the test that used a fixture whose server broke its contract."""
    if violations:
        pytest.fail(
            "the wavespeed mock sent answers that break its contract:\n"
            + "\n".join(violations)
        )


def _apply_scenarios(
    setter: Callable[..., dict[str, Any]], arguments: dict[str, Any]
) -> None:
    from ._scenarios import set_scenarios

    if "scenarios" in arguments:
        set_scenarios(setter, arguments["scenarios"])
