"""The server's state in PostgreSQL, shared by every process pointed at it.

The same interface as :class:`~.store.PredictionStore` (the embedded SQLite
default), with one difference that is the point of it: no process keeps the
predictions in memory. Each read is a query, so a prediction stored or changed
through one process is seen by every other at its next read, and a process
holds a few connections, not a million rows.

- :meth:`PostgresStore.add` inserts a prediction with its charge in one
  transaction and returns once it has committed (a task answered 200 is never
  lost).
- :meth:`PostgresStore.update` writes the changed columns at once (autocommit).
- Retention's removal deletes the rows and carries their charges into the key's
  spend in one transaction, as the SQLite store does.

The schema is created by the server itself and versioned in
``wavespeed_mock_schema`` (docs/scale-out.md). psycopg 3 and psycopg-pool are
the ``postgres`` extra, imported only when a ``postgresql://`` database is
configured. This module and ``store.py`` are the only code that speaks SQL.

What is shared today: predictions, their charges and carried spend, the small
values (webhook secrets, upload tickets), and published values that processes
follow (the clock and timing profile: :meth:`PostgresStore.publish`,
:meth:`PostgresStore.follow`, read with every poll and notified through
``LISTEN``/``NOTIFY``), and bounded logs (the ``logs`` table: the webhook
attempt log, the playground inbox, the request journal). Scenarios and custom
outputs are still per process (issue 23's later steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...contracts.errors import WavespeedMockError
from .engine import INTERNAL_ERROR
from .prediction import MUTABLE_FIELDS, Prediction
from .store import (
    CARRIED,
    StoreError,
    check_mutable,
    prediction_from_row,
    prediction_record,
)

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = [
    "ATTEMPTS_FAILURE_CODE",
    "CHANNEL",
    "DEFAULT_LEASE_S",
    "MAX_ATTEMPTS",
    "PG_SCHEMA_VERSION",
    "PostgresStore",
]

log = logging.getLogger("wavespeed_mock")

PG_SCHEMA_VERSION = 6
_COLUMNS = ", ".join(MUTABLE_FIELDS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS wavespeed_mock_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    charge_micros BIGINT NOT NULL,
    image_digest TEXT,
    record TEXT NOT NULL,
    polls INTEGER,
    render_started_at DOUBLE PRECISION,
    rendered_at DOUBLE PRECISION,
    inference_ms INTEGER,
    nsfw TEXT,
    failure_code INTEGER,
    failure_message TEXT,
    forced_status TEXT,
    output_file TEXT,
    notified_at DOUBLE PRECISION,
    device TEXT,
    owner TEXT,
    work_lease DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS predictions_key_id ON predictions (key_id);
CREATE INDEX IF NOT EXISTS predictions_image_digest ON predictions (image_digest)
    WHERE image_digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE SEQUENCE IF NOT EXISTS published_versions;
CREATE TABLE IF NOT EXISTS logs (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_kind ON logs (kind, seq);
CREATE TABLE IF NOT EXISTS processes (
    owner TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    engine TEXT NOT NULL,
    devices TEXT NOT NULL DEFAULT '',
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS output_rules (
    id BIGSERIAL PRIMARY KEY,
    model TEXT NOT NULL,
    rule TEXT NOT NULL,
    files BYTEA[] NOT NULL,
    times INTEGER
);
"""
_LOG_EXTEND = (
    "INSERT INTO logs (kind, subject, entry) SELECT %s, s, e "
    "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(s, e, n) ORDER BY n"
)
_LOG_TRIM = (
    "DELETE FROM logs WHERE kind = %s AND seq <= (SELECT seq FROM logs "
    "WHERE kind = %s ORDER BY seq DESC OFFSET %s LIMIT 1)"
)
_TRIM_EVERY = 256
"""Entries one process adds to a log between two cuts back to its bound."""
_SELECT = f"SELECT record, {_COLUMNS} FROM predictions"
_GET = f"{_SELECT} WHERE id = %s"
# A poll's one query: the row, and the published values this process follows
# (the shared clock), even when no row has the id.
# (The keys are written into the statement when followed: no array to send.)
_SELECT_FOLLOWING = (
    "SELECT p.record, "
    + ", ".join(f"p.{name}" for name in MUTABLE_FIELDS)
    + ", (SELECT json_object_agg(key, value) FROM kv WHERE key IN ({keys}))"
    " FROM (SELECT 1) AS one LEFT JOIN predictions p ON p.id = %s"
)
_FOLLOWABLE = re.compile(r"[a-z0-9:_.-]{1,64}")
"""What a followed key may be (it is written into a statement)."""
_RENDER_LEFT = (
    "(rendered_at IS NULL AND COALESCE(failure_code, 0) = 0 AND forced_status IS NULL)"
)
"""A task whose render's outcome is not known yet."""
_UNFINISHED = f"({_RENDER_LEFT} OR notified_at IS NULL AND (record::jsonb ->> 'webhook') IS NOT NULL)"
"""A task with work left: its outcome unknown, or its webhook owed."""
MAX_ATTEMPTS = 3
"""Renders a task may begin (by the process that stored it, or taken: handed
off, or from a process that died) before the take after them fails it instead
(``ATTEMPTS_FAILURE_CODE``, refunded as every failure is)."""
_NOTICES_AT_MOST = 100
"""Tasks of dead processes that only owe their webhook, taken in one call at most."""
ATTEMPTS_FAILURE_CODE = INTERNAL_ERROR
_NOW = "extract(epoch FROM clock_timestamp())"
"""Leases run on the database's clock: one clock for every host."""
_HANDED_OFF_S = -1.0
"""A handed-off task's lease: one that ended a second ago, free to take."""
_LOCK_SPACE = 7275817
"""The first key of this project's advisory locks (``exclusive``)."""
_LIVE_SPACE = 7275818
"""The first key of the processes' liveness locks (``take_over``)."""
CHANNEL = "wavespeed_mock_published"
"""The ``LISTEN``/``NOTIFY`` channel on which a published key's name is sent."""
WORK_PAYLOAD = ":work"
"""The notification that work was freed (not a key: keys never start with ':')."""
DEFAULT_LEASE_S = 10.0
"""How long a process holds a task's work (render, webhook) without renewing
before another process takes it over (``--lease``)."""
COUNT_FRESH_S = 1.0
"""How long a count of the predictions is reused (see ``PostgresStore.__len__``)."""
CHECKOUT_TIMEOUT_S = 10.0
"""How long a query waits for a free pooled connection (or a new one while the
database is down) before the request is answered 503."""
_BATCH = 500
"""Rows fetched at a time when walking the store oldest first."""


class PostgresStore:
    """Predictions, their charges and small values in a PostgreSQL database."""

    shared = True
    """Every process pointed at the database sees the same state."""

    def __init__(
        self,
        url: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        min_size: int = 1,
        max_size: int = 8,
        hands_off: bool = False,
    ) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:  # pragma: no cover - depends on the install
            raise WavespeedMockError(
                "A postgresql:// database needs psycopg 3 and psycopg-pool: "
                "pip install 'wavespeed-mock[postgres]'"
            ) from None
        self.url = url
        self.lease_s = lease_s
        self.owner = uuid.uuid4().hex
        """This process, as the ``owner`` of the tasks whose work it leases."""
        self._alive: Any = None  # the connection holding this process's liveness lock
        self._psycopg = psycopg
        self._errors = psycopg.Error
        self._followers: dict[str, Callable[[str], None]] = {}
        self._apool: AsyncConnectionPool[Any] | None = None
        """Polls' connections, opened on the server's loop (:meth:`attach`)."""
        self._log_added = 0  # entries added since the last cut (log_extend)
        self._work_waiters: list[Callable[[], None]] = []
        self.hands_off = hands_off
        """A ``--no-render`` server's: its tasks' work is stored free (no owner,
        an ended lease) for a worker to take at once (``take_over``)."""
        self._opening: asyncio.Task[None] | None = None
        self._select_following: str | None = None
        """A poll's query once a key is followed (``_SELECT_FOLLOWING``)."""
        self._versions: dict[str, int] = {}
        self._follow_lock = threading.Lock()
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._count: int | None = None
        self._counted_at = 0.0
        self._count_lock = threading.Lock()
        try:  # one connection first: a refused or wrong URL fails now, named
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise StoreError(f"cannot reach the database {_shown(url)}: {exc}") from exc
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            timeout=CHECKOUT_TIMEOUT_S,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10.0)
        except Exception as exc:
            self._pool.close()
            raise StoreError(f"cannot reach the database {_shown(url)}: {exc}") from exc
        self._migrate()
        self._hold_liveness()

    def _migrate(self) -> None:
        with self._connection() as db, db.transaction():
            # One process creates the schema while others wait on the lock.
            db.execute("SELECT pg_advisory_xact_lock(7275817)")
            db.execute(_SCHEMA)
            row = db.execute("SELECT version FROM wavespeed_mock_schema").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO wavespeed_mock_schema (version) VALUES (%s)",
                    (PG_SCHEMA_VERSION,),
                )
            elif int(row[0]) > PG_SCHEMA_VERSION:
                raise StoreError(
                    f"the database {_shown(self.url)} has schema version {row[0]}, "
                    f"newer than this wavespeed-mock's {PG_SCHEMA_VERSION}: upgrade it"
                )
            else:
                version = int(row[0])
                if version < 2:
                    # Version 2 records when a webhook was done; older rows' are
                    # taken as sent, so that an upgrade does not send them again.
                    db.execute(
                        "ALTER TABLE predictions "
                        "ADD COLUMN IF NOT EXISTS notified_at DOUBLE PRECISION"
                    )
                    db.execute("UPDATE predictions SET notified_at = 0")
                if version < 3:
                    # Version 3 leases a task's work to a process; what an older
                    # server left unfinished is free to take at once.
                    db.execute(
                        "ALTER TABLE predictions ADD COLUMN IF NOT EXISTS owner TEXT, "
                        "ADD COLUMN IF NOT EXISTS work_lease DOUBLE PRECISION"
                    )
                    db.execute(
                        f"UPDATE predictions SET work_lease = 0 WHERE {_UNFINISHED}"
                    )
                if version < 5:
                    # Version 5 counts the times a task's render was taken.
                    db.execute(
                        "ALTER TABLE predictions "
                        "ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0"
                    )
                if version < 6:
                    # Version 6 keeps the device a render ran on, and each
                    # process's devices.
                    db.execute(
                        "ALTER TABLE predictions ADD COLUMN IF NOT EXISTS device TEXT"
                    )
                    db.execute(
                        "ALTER TABLE processes "
                        "ADD COLUMN IF NOT EXISTS devices TEXT NOT NULL DEFAULT ''"
                    )
                if version < PG_SCHEMA_VERSION:
                    db.execute(
                        "UPDATE wavespeed_mock_schema SET version = %s",
                        (PG_SCHEMA_VERSION,),
                    )
            db.execute(
                "CREATE INDEX IF NOT EXISTS predictions_work_lease "
                "ON predictions (work_lease) WHERE work_lease IS NOT NULL"
            )

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the pool of asynchronous connections that polls read with
        (:meth:`fetch`) on ``loop``. Writes need no batching: each commits at once."""
        from psycopg_pool import AsyncConnectionPool

        self._apool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True, "connect_timeout": 10},
            timeout=CHECKOUT_TIMEOUT_S,
            open=False,
        )
        self._opening = loop.create_task(self._apool.open(wait=True, timeout=10.0))

    async def detach(self) -> None:
        """Close the asynchronous pool (the server stops; before :meth:`close`)."""
        apool, self._apool = self._apool, None
        if apool is not None:
            if self._opening is not None:
                # An open that failed holds nothing to close.
                with contextlib.suppress(Exception):
                    await self._opening
            await apool.close()

    # -- predictions ---------------------------------------------------------------

    def __len__(self) -> int:
        """The stored predictions: counted at most once per ``COUNT_FRESH_S``,
        this process's own adds and removals applied at once (retention asks
        after every submit, and ``count(*)`` reads the whole table); what other
        processes did shows within ``COUNT_FRESH_S``."""
        with self._count_lock:
            if (
                self._count is not None
                and time.monotonic() - self._counted_at < COUNT_FRESH_S
            ):
                return self._count
        at = time.monotonic()
        count = int(self._one("SELECT count(*) FROM predictions")[0])
        with self._count_lock:
            self._count, self._counted_at = count, at
        return count

    def _counted(self, change: int | None) -> None:
        """Apply this process's change to the cached count (None: it is now 0)."""
        with self._count_lock:
            if self._count is not None:
                self._count = 0 if change is None else max(0, self._count + change)

    def get(self, prediction_id: str) -> Prediction | None:
        """The prediction, read with the published values this process follows
        (one query), so a poll sees a clock moved through another process."""
        following = self._select_following
        with self._connection() as db:
            row = db.execute(following or _GET, (prediction_id,)).fetchone()
        return self._prediction(row, following is not None)

    async def fetch(self, prediction_id: str) -> Prediction | None:
        """:meth:`get` without blocking the event loop: through the asynchronous
        pool once attached (no thread per query: 1,990 to about 2,500 polls/s
        at 16 connections, docs/scale-out.md), else on a worker thread."""
        if self._apool is None:
            return await asyncio.to_thread(self.get, prediction_id)
        following = self._select_following
        async with self._aconnection() as db:
            cur = await db.execute(following or _GET, (prediction_id,))
            row = await cur.fetchone()
        return self._prediction(row, following is not None)

    @contextlib.asynccontextmanager
    async def _aconnection(self) -> AsyncIterator[Any]:
        """A connection of the asynchronous pool (:meth:`attach`); a database
        failure comes out as :class:`StoreError`, as :meth:`_connection`'s."""
        assert self._apool is not None
        try:
            if self._opening is not None:
                await self._opening  # done after the first use
            async with self._apool.connection() as db:
                yield db
        except self._errors as exc:
            raise StoreError(
                f"the database {_shown(self.url)} cannot answer: {exc}"
            ) from exc

    def _prediction(
        self, row: tuple[Any, ...] | None, following: bool
    ) -> Prediction | None:
        """A poll's row as a prediction (None: no such id). ``following``: the row
        ends with the followed keys' values (``_SELECT_FOLLOWING``), handed on."""
        if row is None:
            return None
        if following:
            for key, value in (row[-1] or {}).items():
                self._seen(key, value)
            row = row[:-1]
        return None if row[0] is None else prediction_from_row(row[0], row[1:])

    def holds(self, p: Prediction) -> bool:
        """Whether ``p`` is still stored (not reset, deleted or pruned meanwhile):
        ids are 128 random bits, so a row with its id is its row."""
        return bool(
            self._one(
                "SELECT EXISTS (SELECT 1 FROM predictions WHERE id = %s)", (p.id,)
            )[0]
        )

    def all(self) -> list[Prediction]:
        """Every prediction, oldest first."""
        return list(self.oldest())

    def oldest(self) -> Iterator[Prediction]:
        """The predictions, oldest first, read a batch at a time."""
        after = 0
        while True:
            with self._connection() as db:
                rows = db.execute(
                    f"SELECT seq, record, {_COLUMNS} FROM predictions "
                    "WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after, _BATCH),
                ).fetchall()
            for row in rows:
                yield prediction_from_row(row[1], row[2:])
            if len(rows) < _BATCH:
                return
            after = int(rows[-1][0])

    def uses_image(self, digest: str) -> bool:
        """Whether a stored prediction uses the kept ``data:`` image ``digest``."""
        return bool(
            self._one(
                "SELECT EXISTS (SELECT 1 FROM predictions WHERE image_digest = %s)",
                (digest,),
            )[0]
        )

    async def add(self, p: Prediction, *, charge_micros: int) -> None:
        """Store ``p`` and its charge; return once both have committed.

        Raises:
            StoreError: the commit failed; nothing of ``p`` is kept.
        """
        await asyncio.to_thread(self._insert, p, charge_micros)

    def _insert(self, p: Prediction, charge_micros: int) -> None:
        # A task with work left is leased to this process in the same insert:
        # if the process dies, another takes the work over (take_over).
        record = prediction_record(p)
        leased = not p.outcome_known or bool(p.webhook and p.notified_at is None)
        with self._connection() as db:
            db.execute(
                "INSERT INTO predictions (id, key_id, charge_micros, image_digest, "
                f"record, {_COLUMNS}, owner, attempts, work_lease) "
                "VALUES (%s, %s, %s, %s, %s"
                + ", %s" * len(MUTABLE_FIELDS)
                + f", %s, %s, CASE WHEN %s THEN {_NOW} + %s END)",
                (
                    p.id,
                    p.key_id,
                    charge_micros,
                    p.image_digest,
                    record,
                    *(_column(p, n) for n in MUTABLE_FIELDS),
                    None if self.hands_off else self.owner,
                    # This process renders it (or took it from the cache):
                    # its first attempt.
                    int(
                        not self.hands_off
                        and (not p.outcome_known or p.render_started_at is not None)
                    ),
                    leased,
                    # Handed off: a lease that ended already, free to take.
                    _HANDED_OFF_S if self.hands_off else self.lease_s,
                ),
            )
            if self.hands_off and leased:  # a worker waiting for work wakes now
                db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, WORK_PAYLOAD))
        self._counted(1)

    # -- leased work (renders and webhooks that survive their process) ---------------

    def on_work(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (on the listening thread) when work is freed anywhere on
        the database: a ``--no-render`` server stored a task, or a process
        stopping handed its work back. Starts the listening thread if needed."""
        self._work_waiters.append(wake)
        self._listen_from_now()

    def register(self, role: str, engine: str, devices: tuple[str, ...] = ()) -> None:
        """Say who this process is (``GET /_mock/workers``): its role (``serve``,
        ``api`` for ``--no-render``, ``worker``), host, pid, engine and the
        engine's devices."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO processes (owner, role, host, pid, engine, devices, "
                f"started_at, heartbeat) VALUES (%s, %s, %s, %s, %s, %s, {_NOW}, {_NOW}) "
                "ON CONFLICT (owner) DO UPDATE SET heartbeat = excluded.heartbeat",
                (
                    self.owner, role, socket.gethostname(), os.getpid(), engine,
                    ",".join(devices),
                ),
            )  # fmt: skip

    def workers(self, show: int = 20) -> dict[str, Any]:
        """The processes on this database, each with whether it lives (its
        liveness lock is held), its last pass and the tasks it holds (the first
        ``show`` ids); the tasks free to take. A process that is gone and holds
        nothing is forgotten here."""
        with self._connection() as db, db.transaction():
            rows = db.execute(
                "SELECT owner, role, host, pid, engine, devices, started_at, heartbeat, "
                "NOT pg_try_advisory_xact_lock(%s, hashtext(owner)) OR owner = %s "
                "FROM processes ORDER BY started_at",
                (_LIVE_SPACE, self.owner),
            ).fetchall()
            held: dict[str, list[str]] = {}
            for owner, pid in db.execute(
                "SELECT owner, id FROM predictions WHERE work_lease IS NOT NULL "
                f"AND work_lease >= {_NOW} ORDER BY seq"
            ).fetchall():
                held.setdefault(str(owner), []).append(str(pid))
            free = int(
                db.execute(
                    f"SELECT count(*) FROM predictions WHERE work_lease < {_NOW}"
                ).fetchone()[0]
            )
            gone = [str(r[0]) for r in rows if not r[8] and str(r[0]) not in held]
            if gone:
                db.execute("DELETE FROM processes WHERE owner = ANY(%s)", (gone,))
        processes = [
            {
                "id": str(owner),
                "role": role,
                "host": host,
                "pid": pid,
                "engine": engine,
                "devices": [d for d in str(devices).split(",") if d],
                "started_at": started_at,
                "heartbeat": heartbeat,
                "alive": bool(alive),
                "state": _state(bool(alive), len(held.get(str(owner), []))),
                "holds": len(held.get(str(owner), [])),
                "tasks": held.get(str(owner), [])[:show],
            }
            for owner, role, host, pid, engine, devices, started_at, heartbeat, alive in rows
            if str(owner) not in gone
        ]
        return {
            "processes": processes,
            "queue": {"free": free, "held": sum(len(v) for v in held.values())},
        }

    def renew(self) -> None:
        """Keep this process's leases: release those whose work is done, extend
        the rest by ``lease_s`` (one transaction)."""
        with self._connection() as db, db.transaction():
            db.execute(
                f"UPDATE processes SET heartbeat = {_NOW} WHERE owner = %s",
                (self.owner,),
            )
            db.execute(
                "UPDATE predictions SET work_lease = NULL "
                "WHERE owner = %s AND work_lease IS NOT NULL "
                f"AND NOT {_UNFINISHED}",
                (self.owner,),
            )
            db.execute(
                f"UPDATE predictions SET work_lease = {_NOW} + %s "
                "WHERE owner = %s AND work_lease IS NOT NULL",
                (self.lease_s, self.owner),
            )

    def release(self) -> None:
        """End this process's leases now: its unfinished work is free to take;
        it is no longer listed among the processes."""
        with self._connection() as db:
            db.execute(
                "UPDATE predictions SET work_lease = 0 "
                "WHERE owner = %s AND work_lease IS NOT NULL",
                (self.owner,),
            )
            db.execute("DELETE FROM processes WHERE owner = %s", (self.owner,))
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, WORK_PAYLOAD))

    def take_over(self, limit: int = 100) -> list[Prediction]:
        """Lease to this process the work of tasks whose lease ran out (their
        process stopped renewing: a crash), and at once the work of a process
        whose liveness lock is free (it died and its connection with it, on a
        host that lives: freed in milliseconds, not a lease); each task is taken
        by one process only (``FOR UPDATE SKIP LOCKED``). At most ``limit``
        tasks, but the webhooks a dead process owed: they need no render slot
        and are taken too (up to ``_NOTICES_AT_MOST`` a call)."""
        with self._connection() as db, db.transaction():
            # A transaction lock taken on a process's key means nobody holds
            # its session lock: the process is gone. (Released at commit.)
            gone = [
                str(owner)
                for (owner,) in db.execute(
                    "SELECT owner FROM (SELECT DISTINCT owner FROM predictions "
                    f"WHERE work_lease >= {_NOW} AND owner IS NOT NULL "
                    "AND owner <> %s) AS leased "
                    "WHERE pg_try_advisory_xact_lock(%s, hashtext(owner))",
                    (self.owner, _LIVE_SPACE),
                ).fetchall()
            ]
            dead = "(work_lease IS NOT NULL AND owner = ANY(%(gone)s))"
            rows = db.execute(
                # What a dead process left, and any task whose lease ended
                # (a process that vanished, or one late to renew), within the
                # free render slots; the webhooks a dead process owed need no
                # slot and are taken at once. (A late renewal's webhooks are
                # not: whoever takes them sends them, and so may the late.)
                "WITH renders AS (SELECT seq FROM predictions "
                f"WHERE (work_lease < {_NOW} OR {dead}) "
                f"AND ({_RENDER_LEFT} OR NOT {dead}) "
                # A dead process's render first: it was under way when it died.
                f"ORDER BY {dead} DESC NULLS LAST, work_lease "
                "LIMIT %(renders)s FOR UPDATE SKIP LOCKED), "
                "notices AS (SELECT seq FROM predictions "
                f"WHERE {dead} AND NOT {_RENDER_LEFT} "
                "ORDER BY work_lease LIMIT %(notices)s FOR UPDATE SKIP LOCKED) "
                "UPDATE predictions SET owner = %(owner)s, "
                f"work_lease = {_NOW} + %(lease)s, "
                f"attempts = attempts + (CASE WHEN {_RENDER_LEFT} THEN 1 ELSE 0 END) "
                "WHERE seq IN (SELECT seq FROM renders UNION ALL "
                "SELECT seq FROM notices) "
                f"RETURNING attempts, record, {_COLUMNS}",
                {
                    "owner": self.owner,
                    "lease": self.lease_s,
                    "gone": gone,
                    "renders": limit,
                    "notices": _NOTICES_AT_MOST,
                },
            ).fetchall()
        taken = []
        for attempts, record, *columns in rows:
            p = prediction_from_row(record, columns)
            if attempts > MAX_ATTEMPTS and not p.outcome_known:
                # Every process that took it stopped before it ended: a job that
                # kills its worker is failed, not taken again for ever.
                self.update(
                    p,
                    failure_code=ATTEMPTS_FAILURE_CODE,
                    failure_message=(
                        f"The task failed: its render began {MAX_ATTEMPTS} times "
                        "and every process that began it stopped before it finished"
                    ),
                )
            taken.append(p)
        return taken

    def _hold_liveness(self) -> None:
        """Hold this process's liveness lock for its life, on a connection of
        its own: the database frees it when the process dies (its connection
        closes), and ``take_over`` in other processes reads that."""
        try:
            self._alive = self._psycopg.connect(
                self.url, autocommit=True, connect_timeout=10
            )
            self._alive.execute(
                "SELECT pg_advisory_lock(%s, hashtext(%s))", (_LIVE_SPACE, self.owner)
            )
        except self._errors as exc:
            self._pool.close()
            raise StoreError(
                f"cannot reach the database {_shown(self.url)}: {exc}"
            ) from exc

    def remove(
        self, victims: Sequence[Prediction], *, refunded: Callable[[Prediction], bool]
    ) -> list[Prediction]:
        """Delete ``victims`` (retention) in one transaction; the ones that were
        stored. A victim's charge stays spent unless ``refunded(victim)``: it is
        carried into its key's spend in the same transaction."""
        if not victims:
            return []
        by_id = {p.id: p for p in victims}
        with self._connection() as db, db.transaction():
            rows = db.execute(
                "DELETE FROM predictions WHERE id = ANY(%s) "
                "RETURNING id, key_id, charge_micros",
                (list(by_id),),
            ).fetchall()
            carried: dict[str, int] = {}
            for pid, key, charge in rows:
                if charge and not refunded(by_id[pid]):
                    carried[key] = carried.get(key, 0) + int(charge)
            for key, micros in carried.items():
                db.execute(
                    "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                    "DO UPDATE SET value = (kv.value::bigint + %s)::text",
                    (CARRIED + key, str(micros), micros),
                )
        gone = {str(row[0]) for row in rows}
        self._counted(-len(gone))
        return [p for p in victims if p.id in gone]

    def update(self, p: Prediction, **changes: Any) -> None:
        """Apply ``changes`` to ``p`` and write the changed columns now."""
        check_mutable(changes)
        for name, value in changes.items():
            setattr(p, name, value)
        ordered = [n for n in MUTABLE_FIELDS if n in changes]
        if not ordered:
            return
        with self._connection() as db:
            db.execute(
                "UPDATE predictions SET "
                + ", ".join(f"{n} = %s" for n in ordered)
                + " WHERE id = %s",
                [*(_column(p, n) for n in ordered), p.id],
            )

    def clear(self) -> int:
        """Forget every prediction and charge, carried spend included (other small
        values stay)."""
        with self._connection() as db, db.transaction():
            count = db.execute("DELETE FROM predictions").rowcount
            db.execute("DELETE FROM kv WHERE key LIKE %s", (CARRIED + "%",))
        self._counted(None)
        return int(count)

    # -- the ledger's records ------------------------------------------------------

    def charges(self, key_id: str) -> dict[str, int]:
        """Prediction id to charge in micro-dollars, for one key (by its id)."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT id, charge_micros FROM predictions WHERE key_id = %s "
                "ORDER BY seq",
                (key_id,),
            ).fetchall()
        return {str(pid): int(charge) for pid, charge in rows}

    def carried_spend(self, key_id: str) -> int:
        """Net charges, in micro-dollars, of the key's predictions that were pruned."""
        value = self.get_value(CARRIED + key_id)
        return int(value) if value is not None else 0

    def key_ids(self) -> set[str]:
        """Every key id with a stored prediction or a carried spend."""
        with self._connection() as db:
            stored = db.execute("SELECT DISTINCT key_id FROM predictions").fetchall()
        carried = self.values(CARRIED)
        return {str(k) for (k,) in stored} | {k[len(CARRIED) :] for k, _ in carried}

    def placements(self) -> dict[str, tuple[str | None, int]]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT id, owner, attempts FROM predictions WHERE attempts > 0"
            ).fetchall()
        return {str(i): (None if o is None else str(o), int(a)) for i, o, a in rows}

    # -- small values (webhook secrets, upload tickets) -----------------------------

    def get_value(self, key: str) -> str | None:
        row = self._maybe_one("SELECT value FROM kv WHERE key = %s", (key,))
        return None if row is None else str(row[0])

    def values(self, prefix: str) -> list[tuple[str, str]]:
        """Every small value whose key starts with ``prefix``, by key."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT key, value FROM kv WHERE starts_with(key, %s) ORDER BY key",
                (prefix,),
            ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    def delete_values(self, keys: Sequence[str]) -> None:
        """Delete small values; committed when this returns."""
        with self._connection() as db:
            db.execute("DELETE FROM kv WHERE key = ANY(%s)", (list(keys),))

    @contextlib.contextmanager
    def locked_value(
        self, key: str
    ) -> Iterator[tuple[str | None, Callable[[str], None]]]:
        """A small value (None: not set), read under a row lock that holds
        until the block ends, so no other process changes it meanwhile; the
        block's ``write(value)`` replaces it, committed with the block (nothing
        is, when the block raises)."""
        with self._connection() as db, db.transaction():
            db.execute(
                "INSERT INTO kv (key, value) VALUES (%s, '') "
                "ON CONFLICT (key) DO NOTHING",
                (key,),
            )
            (value,) = db.execute(
                "SELECT value FROM kv WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()

            def write(new: str) -> None:
                db.execute("UPDATE kv SET value = %s WHERE key = %s", (new, key))

            yield (str(value) or None), write

    def set_value(self, key: str, value: str) -> None:
        """Set a value; committed when this returns."""
        with self._connection() as db:
            db.execute(
                "INSERT INTO kv (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- shared logs (the webhook attempt log) ----------------------------------

    def log_append(self, kind: str, subject: str | None, entry: str, keep: int) -> None:
        """Append ``entry`` (JSON) to the log ``kind``, keeping its newest ``keep``."""
        with self._connection() as db, db.transaction():
            db.execute(
                "INSERT INTO logs (kind, subject, entry) VALUES (%s, %s, %s)",
                (kind, subject, entry),
            )
            db.execute(_LOG_TRIM, (kind, kind, keep))

    async def log_extend(
        self, kind: str, entries: list[tuple[str | None, str]], keep: int
    ) -> None:
        """Append ``entries`` (subject, JSON) to the log ``kind`` in one statement,
        without blocking the event loop; the log is cut back to its newest
        ``keep`` once every ``_TRIM_EVERY`` entries this process added (readers
        ask for the newest ``keep``, so the few over it are never shown)."""
        subjects = [subject for subject, _ in entries]
        texts = [text for _, text in entries]
        self._log_added += len(entries)
        trim = self._log_added >= _TRIM_EVERY
        if trim:
            self._log_added = 0
        if self._apool is None:
            await asyncio.to_thread(
                self._log_extend_now, kind, subjects, texts, keep, trim
            )
            return
        async with self._aconnection() as db:
            await db.execute(_LOG_EXTEND, (kind, subjects, texts))
            if trim:
                await db.execute(_LOG_TRIM, (kind, kind, keep))

    def _log_extend_now(
        self,
        kind: str,
        subjects: list[str | None],
        texts: list[str],
        keep: int,
        trim: bool,
    ) -> None:
        with self._connection() as db:
            db.execute(_LOG_EXTEND, (kind, subjects, texts))
            if trim:
                db.execute(_LOG_TRIM, (kind, kind, keep))

    def log_read(
        self, kind: str, subject: str | None = None, newest: int | None = None
    ) -> list[str]:
        """The entries of the log ``kind``, oldest first (one subject's, if given;
        only the ``newest`` if given)."""
        with self._connection() as db:
            if newest is not None:
                rows = db.execute(
                    "SELECT entry FROM (SELECT seq, entry FROM logs WHERE kind = %s "
                    "ORDER BY seq DESC LIMIT %s) AS newest ORDER BY seq",
                    (kind, newest),
                ).fetchall()
            elif subject is None:
                rows = db.execute(
                    "SELECT entry FROM logs WHERE kind = %s ORDER BY seq", (kind,)
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT entry FROM logs WHERE kind = %s AND subject = %s "
                    "ORDER BY seq",
                    (kind, subject),
                ).fetchall()
        return [str(entry) for (entry,) in rows]

    def log_clear(self, kind: str) -> int:
        """Empty the log ``kind``; how many entries it held."""
        with self._connection() as db:
            return int(db.execute("DELETE FROM logs WHERE kind = %s", (kind,)).rowcount)

    # -- custom output rules (features/outputs: SharedOutputBook) -------------------

    def rules_add(
        self, model: str, rule: str, files: list[bytes], times: int | None, limit: int
    ) -> int | None:
        """Keep a rule; its id, or None when ``limit`` rules are in force."""
        with self._connection() as db, db.transaction():
            # The count and the insert as one step for every process.
            db.execute("LOCK TABLE output_rules IN EXCLUSIVE MODE")
            if (
                int(db.execute("SELECT count(*) FROM output_rules").fetchone()[0])
                >= limit
            ):
                return None
            row = db.execute(
                "INSERT INTO output_rules (model, rule, files, times) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (model, rule, files, times),
            ).fetchone()
        return int(row[0])

    def rules_take(
        self, model: str, wanted: Callable[[str], bool]
    ) -> tuple[bool, tuple[int, str, list[bytes]] | None]:
        """The newest wanted rule of ``model``, one use counted, in one
        transaction (the rules locked, so two processes never share a last use);
        and whether any rule is in force."""
        with self._connection() as db, db.transaction():
            rows = db.execute(
                "SELECT id, model, rule, times FROM output_rules ORDER BY id DESC FOR UPDATE"
            ).fetchall()
            for rule_id, rule_model, rule, times in rows:
                if rule_model != model or not wanted(rule):
                    continue
                files = db.execute(
                    "SELECT files FROM output_rules WHERE id = %s", (rule_id,)
                ).fetchone()[0]
                if times is not None and times <= 1:
                    db.execute("DELETE FROM output_rules WHERE id = %s", (rule_id,))
                elif times is not None:
                    db.execute(
                        "UPDATE output_rules SET times = times - 1 WHERE id = %s",
                        (rule_id,),
                    )
                return True, (int(rule_id), str(rule), [bytes(f) for f in files])
        return bool(rows), None

    def rules_list(self) -> list[tuple[int, str, int | None]]:
        """The rules in force, oldest first: id, JSON, uses left."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT id, rule, times FROM output_rules ORDER BY id"
            ).fetchall()
        return [(int(i), str(rule), times) for i, rule, times in rows]

    def rules_clear(self) -> None:
        with self._connection() as db:
            db.execute("DELETE FROM output_rules")

    # -- periodic work, one process at a time -----------------------------------

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process holds ``name``'s advisory lock (tried, never
        waited for) while the block runs; a process that dies frees it with its
        connection."""
        key = (_LOCK_SPACE, zlib.crc32(name.encode()) - 2**31)  # two int4 keys
        with self._connection() as db:
            row = db.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            held = bool(row and row[0])
            try:
                yield held
            finally:
                if held:
                    db.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    # -- published values (the shared clock) ------------------------------------

    def publish(self, key: str, value: str) -> None:
        """Set ``key`` under a new version and notify every process that follows
        it; committed when this returns."""
        with self._connection() as db, db.transaction():
            row = db.execute(
                "INSERT INTO kv (key, value) "
                "VALUES (%s, nextval('published_versions') || ' ' || %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
                "RETURNING value",
                (key, value),
            ).fetchone()
            stored = str(row[0])
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key))
        with self._follow_lock:  # this process has it already
            self._versions[key] = max(self._versions.get(key, 0), _version(stored))

    def follow(self, key: str, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with ``key``'s published value now (if any) and with
        each newer one: read with every :meth:`get`, or notified (a thread of
        this store listens; callbacks may run on it)."""
        if not _FOLLOWABLE.fullmatch(key):
            raise ValueError(f"cannot follow {key!r}: keys are [a-z0-9:_.-], 1-64")
        self._followers[key] = callback
        self._select_following = _SELECT_FOLLOWING.format(
            keys=", ".join(f"'{k}'" for k in self._followers)
        )
        stored = self.get_value(key)
        if stored is not None:
            self._seen(key, stored)
        self._listen_from_now()

    def _listen_from_now(self) -> None:
        """Start the thread that listens to ``CHANNEL`` (once), and wait until
        it listens: a notification sent after this returns is not missed."""
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, name="wavespeed-mock-listen", daemon=True
            )
            self._listener.start()
            self._listening.wait(10.0)

    def refresh(self) -> None:
        """Read every followed key now and hand on what is newer (one query)."""
        followed = list(self._followers)
        if not followed:
            return
        with self._connection() as db:
            rows = db.execute(
                "SELECT key, value FROM kv WHERE key = ANY(%s)", (followed,)
            ).fetchall()
        for key, stored in rows:
            self._seen(str(key), str(stored))

    def _seen(self, key: str, stored: str) -> None:
        """A published value read from the database: handed on if newer than
        the last one seen (the lock keeps callbacks in version order)."""
        callback = self._followers.get(key)
        if callback is None:
            return
        version = _version(stored)
        with self._follow_lock:
            if version <= self._versions.get(key, 0):
                return
            self._versions[key] = version
            callback(stored.partition(" ")[2])

    def _listen(self) -> None:
        """Hand on notified values until :meth:`close`; reconnect after an outage
        and read the followed keys again (a notification may have been missed)."""
        while not self._stop.is_set():
            try:
                with self._psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10
                ) as db:
                    db.execute(f"LISTEN {CHANNEL}")
                    for key in list(self._followers):
                        stored = db.execute(
                            "SELECT value FROM kv WHERE key = %s", (key,)
                        ).fetchone()
                        if stored is not None:
                            self._seen(key, str(stored[0]))
                    self._listening.set()
                    while not self._stop.is_set():
                        # The connection is busy while notifies() runs: read after.
                        notes = list(db.notifies(timeout=0.5, stop_after=1))
                        for note in notes:
                            if note.payload == WORK_PAYLOAD:
                                for wake in list(self._work_waiters):
                                    with contextlib.suppress(RuntimeError):
                                        wake()  # a closed loop: nobody to wake
                                continue
                            stored = db.execute(
                                "SELECT value FROM kv WHERE key = %s", (note.payload,)
                            ).fetchone()
                            if stored is not None:
                                self._seen(note.payload, str(stored[0]))
            except self._errors as exc:
                log.warning(
                    "listening to %s failed (%s); retrying", _shown(self.url), exc
                )
                self._listening.set()  # follow() need not wait for an outage
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(5.0)
        self._pool.close()
        if self._alive is not None:
            with contextlib.suppress(Exception):  # gone already: freed already
                self._alive.close()

    # -- helpers -------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection; any database failure (unreachable, refused, a
        connection cut, no free connection within ``CHECKOUT_TIMEOUT_S``) comes
        out as :class:`StoreError`, which the API answers with 503."""
        try:
            with self._pool.connection() as db:
                yield db
        except self._errors as exc:
            raise StoreError(
                f"the database {_shown(self.url)} cannot answer: {exc}"
            ) from exc

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        row = self._maybe_one(sql, params)
        assert row is not None, sql
        return row

    def _maybe_one(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[Any, ...] | None:
        with self._connection() as db:
            row: tuple[Any, ...] | None = db.execute(sql, params).fetchone()
        return row


def _column(p: Prediction, name: str) -> Any:
    value = getattr(p, name)
    return json.dumps(value) if name == "nsfw" else value


def _version(stored: str) -> int:
    """The version a published value was stored under (``"<version> <value>"``)."""
    head = stored.partition(" ")[0]
    return int(head) if head.isdigit() else 0


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{host}"


def _state(alive: bool, holds: int) -> str:
    """A process's state as ``GET /_mock/workers`` says it: ``gone`` (its
    liveness lock is free: it died; its work is taken over), ``busy`` (it holds
    work), or ``idle``."""
    return "gone" if not alive else "busy" if holds else "idle"
