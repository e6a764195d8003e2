"""Building a server: the core, the features, and the one place that wires them.

:func:`build_server` makes the clock, the store, the engine and the image
loader, then each feature's components, and hands them to :class:`MockService`.
:func:`feature_routes` gives each feature's HTTP routes to the app. Nothing
else connects a feature to the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..contracts import Catalogue, CatalogueError
from .core.clock import ServerClock
from .core.engine import Engine, load_engine
from .core.images import ImageLoader
from .core.journal import Journal, SharedJournal
from .core.objects import open_objects
from .core.profiles import DEFAULT_PROFILE
from .core.remote_fetch import RemoteFetcher
from .core.service import MockService
from .core.store import LogStore, Store, open_store
from .features.account.ledger import Account
from .features.outputs.book import OutputBook, RuleStore, SharedOutputBook
from .features.playground.inbox import WebhookInbox
from .features.replay.deck import CassetteDeck
from .features.scenarios.book import ScenarioBook
from .features.scenarios.shared import ScenarioStore, SharedScenarioBook
from .features.uploads.files import UploadStore
from .features.webhooks.delivery import (
    SharedWebhookLog,
    WebhookDelivery,
    WebhookSecrets,
    WebhookUrlCheck,
)
from .features.webhooks.signing import WebhookVerificationError, verify_webhook
from .settings import DEFAULT_SYNC_WAIT_S, Settings, SettingsError

__all__ = ["Features", "MockServer", "build_server"]


@dataclass(frozen=True)
class Features:
    """The feature components of one server."""

    account: Account
    scenarios: ScenarioBook
    webhooks: WebhookDelivery
    uploads: UploadStore
    inbox: WebhookInbox
    outputs: OutputBook
    cassettes: CassetteDeck | None = None
    """Record/replay (``record``/``replay`` settings); None when neither is set."""


@dataclass(frozen=True)
class MockServer:
    """One mock server's parts: the core service, its features, the request journal."""

    service: MockService
    features: Features
    journal: Journal | SharedJournal
    """The requests received, the newest ``Settings.journal_size``."""

    def reset(self) -> int:
        """Forget all per-test state: predictions, charges, scenarios, logs, journal,
        and the contract violations the response check found (the one reset of a
        server's per-test state; the plugin's fixtures call only this)."""
        count = self.service.reset()
        self.service.contract_violations.clear()
        if self.features.cassettes is not None:
            self.features.cassettes.reset()
        self.journal.clear()
        self.features.inbox.clear()
        return count

    @property
    def settings(self) -> Settings:
        return self.service.settings


def build_server(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: ServerClock | None = None,
) -> MockServer:
    """A server with every feature, as ``wavespeed-mock serve`` runs it.

    Example:
        >>> server = build_server(Settings(data_dir=tmp_path, profile="instant"))
        >>> server.features.scenarios.state()["global"] is None
        True
    """
    try:
        catalogue = Catalogue.with_files(
            settings.catalogue, any_model=settings.any_model
        )
    except CatalogueError as exc:
        raise SettingsError(str(exc)) from None
    engine = engine or load_engine(settings)
    if settings.profile is None:
        # A real engine implies real progress (ovi: the engine profile).
        settings = settings.replace(profile=engine.default_profile or DEFAULT_PROFILE)
    if settings.sync_wait_s is None:
        # A real clip takes minutes (Ovi: about 96 s with flash-attn 2, 12 min for
        # 960x960 10 s): a sync wait shorter than that always ends in 5004.
        wait = getattr(engine, "default_sync_wait_s", None) or DEFAULT_SYNC_WAIT_S
        settings = settings.replace(sync_wait_s=wait)
    data_dir = Path(settings.data_dir).resolve()
    clock = clock or ServerClock(virtual=settings.virtual_clock)
    # Files kept past this machine (--outputs s3://...), or the data folder only.
    objects = open_objects(
        settings.outputs,
        endpoint=settings.s3_endpoint,
        presign_s=settings.presign_s,
        lazy_renders=settings.lazy_renders,
    )
    images = ImageLoader(
        data_dir=data_dir,
        base_url=settings.base_url,
        fetcher=(
            RemoteFetcher(allow=settings.fetch_allow)
            if settings.fetch_remote_images
            else None
        ),
        max_pixels=settings.max_image_pixels,
        objects=objects,
    )
    # Before anything is opened: bad record/replay settings fail with nothing to close.
    cassettes = CassetteDeck.from_settings(
        settings, clock=clock, images=images, catalogue=catalogue
    )
    store = open_store(
        settings.database,
        data_dir,
        lease_s=settings.lease_s,
        hands_off=settings.no_render,
    )
    secrets = WebhookSecrets(store)
    features = Features(
        account=Account(
            store=store, clock=clock, starting_balance=settings.starting_balance
        ),
        # Shared store: a scenario set through any process applies to every one.
        scenarios=(
            SharedScenarioBook(
                clock=clock, store=store, shared=cast("ScenarioStore", store)
            )
            if store.shared
            else ScenarioBook(clock=clock, store=store)
        ),
        webhooks=WebhookDelivery(
            clock=clock,
            secrets=secrets,
            retry_base_s=settings.webhook_retry_base_s,
            timeout_s=settings.webhook_timeout_s,
            allow=settings.webhook_allow,
            log_size=settings.webhook_log_size,
            # Shared store: any process's attempts are read through every one.
            log=(
                SharedWebhookLog(cast("LogStore", store), settings.webhook_log_size)
                if store.shared
                else None
            ),
        ),
        uploads=UploadStore(
            data_dir=data_dir,
            store=store,
            max_bytes=settings.max_upload_bytes,
            max_image_pixels=settings.max_image_pixels,
            objects=objects,
        ),
        inbox=WebhookInbox(
            _InboxVerifier(store, secrets, clock),
            shared=cast("LogStore", store) if store.shared else None,
        ),
        # Shared store: a rule set through any process serves every one.
        outputs=(
            SharedOutputBook(catalogue, cast("RuleStore", store))
            if store.shared
            else OutputBook(catalogue)
        ),
        cassettes=cassettes,
    )
    service = MockService(
        settings,
        clock=clock,
        store=store,
        engine=engine,
        images=images,
        # Read in this order: a bad webhook URL (400) before the balance (403).
        admissions=(
            WebhookUrlCheck(),
            features.account,
        ),
        faults=features.scenarios,
        notifiers=(features.webhooks,),
        expiring=(features.uploads,),
        catalogue=catalogue,
        outputs=features.outputs,
        objects=objects,
        # A real engine the catalogue names (Ovi's entries name "ovi") runs
        # those models; the synthetic engine makes every other model's outputs
        # beside it. An engine no entry names (a test's fake) runs them all.
        fallback=(
            load_engine(settings.replace(engine="synthetic", engine_options={}))
            if engine.name != "synthetic"
            and engine.name in {m.engine_model for m in catalogue}
            else None
        ),
    )
    return MockServer(
        service=service,
        features=features,
        # Shared store: any process's requests are read through every one.
        journal=(
            SharedJournal(cast("LogStore", store), settings.journal_size)
            if store.shared
            else Journal(settings.journal_size)
        ),
    )


class _InboxVerifier:
    """The playground inbox's signature check: the webhooks feature's
    ``verify_webhook`` with the secret of the key that made the prediction."""

    def __init__(
        self, store: Store, secrets: WebhookSecrets, clock: ServerClock
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.clock = clock

    def verdict(self, headers: Mapping[str, str], body: bytes) -> str:
        prediction = self.store.get(headers.get("webhook-id", ""))
        if prediction is None:
            return "unknown prediction: no stored prediction has this webhook-id"
        try:
            # Deliveries are stamped with the server's clock, which may be virtual.
            verify_webhook(
                headers,
                body,
                self.secrets.secret_for(prediction.key_id),
                now=self.clock.now(),
            )
        except WebhookVerificationError as exc:
            return f"invalid: {exc}"
        return "valid"
