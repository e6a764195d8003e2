"""Where the server's state lives: one SQLite database, mirrored in memory.

Reads (every poll) come from memory. Writes go to ``state.sqlite3`` in WAL mode
with ``synchronous=NORMAL``: a committed transaction survives a killed process.

- :meth:`PredictionStore.add` stores a new prediction together with its charge
  and returns only once both have committed, so a task that was answered 200 is
  never lost. Concurrent submits share one transaction (group commit): each
  ``add`` queues its rows and waits; one flush, scheduled on the event loop,
  commits everything queued by then.
- :meth:`PredictionStore.update` changes a stored prediction and writes only
  the columns that changed (a poll count, a render's outcome), with the next
  flush; it does not wait.

A crash therefore loses at most updates not yet flushed (a poll count, a
render outcome), never a prediction or a charge; at start the service
re-queues renders whose outcome was not recorded. This module is the only
code that speaks SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ...contracts import OutputPlan, plan_json
from ..settings import SettingsError, is_database_url
from .keys import key_id, mask_key
from .prediction import MUTABLE_FIELDS, Prediction

__all__ = [
    "MICROS",
    "LogStore",
    "PredictionStore",
    "Store",
    "StoreError",
    "check_mutable",
    "open_store",
    "prediction_from_row",
    "prediction_record",
]

log = logging.getLogger("wavespeed_mock.server")

SCHEMA_VERSION = 5
CARRIED = "carried_spend:"
"""The key-value prefix of each key's spend carried over from pruned predictions."""
MICROS = 1_000_000
"""Charges are integer micro-dollars, so sums never drift."""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS predictions (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    charge_micros INTEGER NOT NULL,
    record TEXT NOT NULL,
    {", ".join(MUTABLE_FIELDS)}
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = {SCHEMA_VERSION};
"""
_FIXED_FIELDS = tuple(
    f.name for f in dataclasses.fields(Prediction) if f.name not in MUTABLE_FIELDS
)
_RECORD_FIELDS = tuple(name for name in _FIXED_FIELDS if name != "plan")
_NO_DEFAULT = object()
_RECORD_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(Prediction)
    if f.name in _RECORD_FIELDS and f.default is not dataclasses.MISSING
}
# One row per prediction, its charge in it, keyed by ``seq``, the order of
# creation: a submit appends to one B-tree (no index on the random ids, whose
# inserts would land on random pages), so a commit writes few pages. The store
# knows each id's ``seq`` and updates by it. Measured: docs/performance.md.
_INSERT_PREDICTION = (
    "INSERT INTO predictions (seq, id, key_id, charge_micros, record, "
    + ", ".join(MUTABLE_FIELDS)
    + ") VALUES (?, ?, ?, ?, ?"
    + ", ?" * len(MUTABLE_FIELDS)
    + ")"
)


class StoreError(RuntimeError):
    """The database could not commit (a full disk, a broken file)."""


class LogStore(Protocol):
    """A store that keeps bounded logs for every process on it
    (``PostgresStore``): the webhook attempt log, the playground inbox, the
    request journal (``core/journal.py``)."""

    def log_append(
        self, kind: str, subject: str | None, entry: str, keep: int
    ) -> None: ...
    async def log_extend(
        self, kind: str, entries: list[tuple[str | None, str]], keep: int
    ) -> None:
        """Append several entries without blocking the loop, keeping about the
        newest ``keep`` (readers ask for them: ``log_read(newest=...)``)."""
        ...

    def log_read(
        self, kind: str, subject: str | None = None, newest: int | None = None
    ) -> list[str]: ...
    def log_clear(self, kind: str) -> int: ...


class Store(Protocol):
    """What the service and the features need of the state's storage: the
    embedded SQLite :class:`PredictionStore` (the default) and
    :class:`~.pg_store.PostgresStore` (shared by many processes) both are one."""

    shared: bool
    """Whether other processes use the same state (then it also publishes
    values they follow: ``core.shared_time.SharedStore``)."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None: ...
    async def detach(self) -> None:
        """Release what :meth:`attach` tied to the event loop (a stop; before
        :meth:`close`)."""
        ...

    def __len__(self) -> int: ...
    def get(self, prediction_id: str) -> Prediction | None: ...
    async def fetch(self, prediction_id: str) -> Prediction | None:
        """:meth:`get` from the event loop without blocking it (a poll)."""
        ...

    def holds(self, p: Prediction) -> bool: ...
    def all(self) -> list[Prediction]: ...
    def oldest(self) -> Iterator[Prediction]: ...
    def uses_image(self, digest: str) -> bool: ...
    async def add(self, p: Prediction, *, charge_micros: int) -> None: ...
    def remove(
        self, victims: Sequence[Prediction], *, refunded: Callable[[Prediction], bool]
    ) -> list[Prediction]: ...
    def update(self, p: Prediction, **changes: Any) -> None: ...
    def clear(self) -> int: ...
    def charges(self, key_id: str) -> dict[str, int]: ...
    def carried_spend(self, key_id: str) -> int: ...
    def key_ids(self) -> set[str]: ...
    def placements(self) -> dict[str, tuple[str | None, int]]:
        """Where renders went: ``{prediction id: (process id, attempts)}`` for
        every task a process began to render; the process id is the one
        ``GET /_mock/workers`` lists (empty in a store of one process)."""
        ...

    def get_value(self, key: str) -> str | None: ...
    def values(self, prefix: str) -> list[tuple[str, str]]: ...
    def delete_values(self, keys: Sequence[str]) -> None: ...
    def set_value(self, key: str, value: str) -> None: ...
    def close(self) -> None: ...
    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Whether this process may do the periodic work ``name`` now, held while
        the block runs: one process at a time on a shared store."""
        ...


def open_store(
    database: str | None,
    data_dir: Path,
    *,
    lease_s: float = 10.0,
    hands_off: bool = False,
) -> Store:
    """The store a server uses: ``state.sqlite3`` in ``data_dir`` by default, or
    the PostgreSQL database a ``postgresql://`` URL names (``lease_s``: how long
    a process holds its tasks' work there, ``core/leases.py``; ``hands_off``:
    a ``--no-render`` server's tasks are stored free for a worker to take)."""
    if database and is_database_url(database):
        from .pg_store import PostgresStore  # psycopg only when asked for

        return PostgresStore(database, lease_s=lease_s, hands_off=hands_off)
    if hands_off:
        raise SettingsError(
            "--no-render leaves the work to `wavespeed-mock worker` processes, "
            "which need the shared state: add --database postgresql://... "
            "(docs/scale-out.md)"
        )
    return PredictionStore(data_dir / "state.sqlite3")


class PredictionStore:
    """Predictions, their charges and small values, durable and fast to read."""

    shared = False
    """One process: the rows are mirrored in its memory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # SQLite's automatic checkpoints stay on (every 1,000 pages, in a
        # commit): a checkpointer thread of our own starved under a steady
        # stream of commits and let the WAL grow without bound.
        _migrate(self._db, path)
        self._db.executescript(_SCHEMA)
        self._rows: dict[str, Prediction] = {}
        self._charges: dict[str, dict[str, int]] = {}
        self._seq = 0
        self._seqs: dict[str, int] = {}
        """Each stored id's row key (its place in the order of creation)."""
        self._digests: Counter[str] = Counter()
        """How many stored predictions use each kept ``data:`` image."""
        self._carried: dict[str, int] = {}
        """Per key, the net charges of pruned predictions (they stay spent)."""
        self._load()
        # What the next flush writes.
        self._new: list[tuple[Prediction, int]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._dirty: dict[str, set[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._flush_due = False
        self._closed = False

    def _load(self) -> None:
        columns = ", ".join(MUTABLE_FIELDS)
        for row in self._db.execute(
            f"SELECT seq, charge_micros, record, {columns} FROM predictions ORDER BY seq"
        ):
            self._seq = int(row[0])
            p = prediction_from_row(row[2], row[3:])
            self._rows[p.id] = p
            self._seqs[p.id] = self._seq
            self._charges.setdefault(p.key_id, {})[p.id] = int(row[1])
            if p.image_digest:
                self._digests[p.image_digest] += 1
        for key, value in self._db.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ?",
            (CARRIED, _after(CARRIED)),
        ):
            self._carried[key[len(CARRIED) :]] = int(value)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush on ``loop`` (the server's event loop) from now on."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Always this process: it is the only one on its data folder."""
        yield True

    async def detach(self) -> None:
        """The loop is going: what is queued commits now, later writes at once."""
        with self._lock:
            self._loop = None
            self._flush_due = False  # a flush still scheduled finds nothing
            if not self._closed:
                self._commit([])

    # -- predictions ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, prediction_id: str) -> Prediction | None:
        return self._rows.get(prediction_id)

    async def fetch(self, prediction_id: str) -> Prediction | None:
        """:meth:`get`: a lookup in memory, nothing to wait for."""
        return self._rows.get(prediction_id)

    def holds(self, p: Prediction) -> bool:
        """Whether ``p`` is still stored (not reset, deleted or pruned meanwhile)."""
        return self._rows.get(p.id) is p

    def all(self) -> list[Prediction]:
        """Every prediction, oldest first."""
        return list(self._rows.values())

    def oldest(self) -> Iterator[Prediction]:
        """The predictions, oldest first, without a copy: a live view for the event
        loop's thread, which must not add or remove while it iterates."""
        return iter(self._rows.values())

    def uses_image(self, digest: str) -> bool:
        """Whether a stored prediction uses the kept ``data:`` image ``digest``."""
        return self._digests[digest] > 0

    async def add(self, p: Prediction, *, charge_micros: int) -> None:
        """Store ``p`` and its charge; return once both have committed.

        Raises:
            StoreError: the commit failed; nothing of ``p`` is kept.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._seq += 1
            self._rows[p.id] = p
            self._seqs[p.id] = self._seq
            self._charges.setdefault(p.key_id, {})[p.id] = charge_micros
            if p.image_digest:
                self._digests[p.image_digest] += 1
            self._new.append((p, charge_micros))
            self._waiting.append(done)
            self._schedule_flush(loop)
        try:
            await done
        except StoreError:  # not committed: nothing of it may stay
            with self._lock:
                if self._rows.get(p.id) is p:
                    self._forget(p)
            raise

    def _forget(self, p: Prediction) -> int | None:
        # Called with the lock held: ``p`` leaves memory; its row key, if stored.
        del self._rows[p.id]
        self._dirty.pop(p.id, None)
        charges = self._charges.get(p.key_id)
        if charges is not None:
            charges.pop(p.id, None)
            if not charges:
                del self._charges[p.key_id]
        if p.image_digest:
            self._digests[p.image_digest] -= 1
            if self._digests[p.image_digest] <= 0:
                del self._digests[p.image_digest]
        return self._seqs.pop(p.id, None)

    def remove(
        self, victims: Sequence[Prediction], *, refunded: Callable[[Prediction], bool]
    ) -> list[Prediction]:
        """Forget ``victims`` (retention): from memory, and from the database in one
        commit; the ones that were stored.

        A victim's charge stays spent unless ``refunded(victim)``: it is carried
        into its key's spend (committed with the removal), so pruning never
        changes a balance.

        Raises:
            StoreError: the commit failed (the rows come back at the next start,
                where retention removes them again).
        """
        with self._lock:
            gone: list[Prediction] = []
            seqs: list[tuple[int]] = []
            carried: dict[str, int] = {}
            for p in victims:
                if self._rows.get(p.id) is not p:
                    continue
                charge = self._charges.get(p.key_id, {}).get(p.id, 0)
                if charge and not refunded(p):
                    carried[p.key_id] = carried.get(p.key_id, 0) + charge
                seq = self._forget(p)
                if seq is not None:
                    seqs.append((seq,))
                gone.append(p)
            for key, micros in carried.items():
                self._carried[key] = self._carried.get(key, 0) + micros
            if gone:
                self._commit(
                    [
                        ("DELETE FROM predictions WHERE seq = ?", seqs),
                        (
                            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key)"
                            " DO UPDATE SET value = excluded.value",
                            [(CARRIED + k, str(self._carried[k])) for k in carried],
                        ),
                    ]
                )
            return gone

    def update(self, p: Prediction, **changes: Any) -> None:
        """Apply ``changes`` to ``p``; the changed columns are written with the next flush."""
        check_mutable(changes)
        with self._lock:
            for name, value in changes.items():
                setattr(p, name, value)
            if self._rows.get(p.id) is not p:
                return  # reset or removed meanwhile: nothing to persist
            self._dirty.setdefault(p.id, set()).update(changes)
            self._schedule_flush(None)

    def clear(self) -> int:
        """Forget every prediction and charge, carried spend included (other small
        values stay)."""
        with self._lock:
            count = len(self._rows)
            self._rows.clear()
            self._seqs.clear()
            self._charges.clear()
            self._dirty.clear()
            self._digests.clear()
            self._carried.clear()
            self._commit(
                [
                    ("DELETE FROM predictions", [()]),
                    (
                        "DELETE FROM kv WHERE key >= ? AND key < ?",
                        [(CARRIED, _after(CARRIED))],
                    ),
                ]
            )
            return count

    # -- the ledger's records ------------------------------------------------------

    def charges(self, key_id: str) -> dict[str, int]:
        """Prediction id to charge in micro-dollars, for one key (by its id)."""
        with self._lock:
            return dict(self._charges.get(key_id, {}))

    def carried_spend(self, key_id: str) -> int:
        """Net charges, in micro-dollars, of the key's predictions that were pruned."""
        return self._carried.get(key_id, 0)

    def key_ids(self) -> set[str]:
        """Every key id with a stored prediction or a carried spend."""
        with self._lock:
            return set(self._charges) | set(self._carried)

    def placements(self) -> dict[str, tuple[str | None, int]]:
        """None: one process renders everything (``"this process"``)."""
        return {}

    # -- small values (webhook secrets, upload tickets) -----------------------------

    def get_value(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM kv WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def values(self, prefix: str) -> list[tuple[str, str]]:
        """Every small value whose key starts with ``prefix``, by key."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, _after(prefix)),
            ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    def delete_values(self, keys: Sequence[str]) -> None:
        """Delete small values; committed when this returns."""
        with self._lock:
            self._write_now("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])

    def set_value(self, key: str, value: str) -> None:
        """Set a value; committed when this returns."""
        with self._lock:
            self._write_now(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(key, value)],
            )

    # -- writing -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._write_now("", [])
            self._closed = True
            self._db.close()

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop | None) -> None:
        # Called with the lock held.
        if self._flush_due:
            return
        target = loop or self._loop
        if target is None or target.is_closed():
            self._commit([])  # no event loop to batch on: write at once
            return
        self._flush_due = True
        if threading.get_ident() == self._loop_thread or loop is not None:
            target.call_soon(self._flush)
            return
        try:
            target.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop closed since the check: write at once
            self._flush_due = False
            self._commit([])

    def _flush(self) -> None:
        with self._lock:
            self._flush_due = False
            if not self._closed:
                self._commit([])

    def _write_now(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        # Called with the lock held: what is queued, then ``sql``, in one commit.
        statements = [(sql, rows)] if sql else []
        self._commit(statements)

    def _commit(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        new, self._new = self._new, []
        waiting, self._waiting = self._waiting, []
        dirty, self._dirty = self._dirty, {}
        if self._closed:
            error: BaseException | None = StoreError(
                f"the database {self.path} is closed"
            )
        else:
            error = None
            try:
                self._db.execute("BEGIN")
                if new:
                    self._db.executemany(
                        _INSERT_PREDICTION,
                        [
                            _row(added, self._seqs[added.id], micros)
                            for added, micros in new
                            if added.id in self._seqs  # not reset meanwhile
                        ],
                    )
                for pid, names in dirty.items():
                    changed = self._rows.get(pid)
                    if changed is None or pid not in self._seqs:
                        continue
                    ordered = [n for n in MUTABLE_FIELDS if n in names]
                    self._db.execute(
                        "UPDATE predictions SET "
                        + ", ".join(f"{n} = ?" for n in ordered)
                        + " WHERE seq = ?",
                        [*(_column(changed, n) for n in ordered), self._seqs[pid]],
                    )
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                log.error("SQLite commit to %s failed: %s", self.path, exc)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                error = StoreError(f"the database {self.path} could not commit: {exc}")
        for done in waiting:
            loop = done.get_loop()
            if threading.get_ident() == self._loop_thread or not loop.is_running():
                _settle(done, error)
            else:
                loop.call_soon_threadsafe(_settle, done, error)
        if error is not None and statements:
            raise error


# One encoder for every row (json.dumps builds one per call when given options).
_encode_compact = json.JSONEncoder(separators=(",", ":")).encode


def _after(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (a range bound)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _column(p: Prediction, name: str) -> Any:
    value = getattr(p, name)
    return json.dumps(value) if name == "nsfw" else value


def _row(p: Prediction, seq: int, charge_micros: int) -> tuple[Any, ...]:
    return (
        seq,
        p.id,
        p.key_id,
        charge_micros,
        prediction_record(p),
        *(_column(p, n) for n in MUTABLE_FIELDS),
    )


def check_mutable(changes: Mapping[str, Any]) -> None:
    """Refuse an update of a field fixed at creation (both stores).

    Raises:
        TypeError: a field outside ``MUTABLE_FIELDS``.
    """
    unknown = set(changes) - set(MUTABLE_FIELDS)
    if unknown:
        raise TypeError(
            f"Prediction fields {sorted(unknown)} are fixed at creation or unknown; "
            f"the store updates only {', '.join(MUTABLE_FIELDS)}"
        )


def prediction_record(p: Prediction) -> str:
    """The fields fixed at creation as the JSON a row keeps (both stores)."""
    # Fields at their defaults are left out (prediction_from_row restores them):
    # bytes every commit would otherwise write.
    record = {
        name: value
        for name in _RECORD_FIELDS
        if (value := getattr(p, name)) != _RECORD_DEFAULTS.get(name, _NO_DEFAULT)
    }
    text = _encode_compact(record)
    if p.plan is None:
        return text
    # The plan's JSON is made once per distinct plan and spliced in.
    return f'{text[:-1]},"plan":{plan_json(p.plan)}}}'


def prediction_from_row(record: str, changing: Sequence[Any]) -> Prediction:
    """A prediction from its row: the record's JSON and the ``MUTABLE_FIELDS``
    columns, in that order (both stores)."""
    values = json.loads(record)
    fixed = {k: values[k] for k in _FIXED_FIELDS if k in values}
    if fixed.get("plan"):
        fixed["plan"] = OutputPlan.from_dict(fixed["plan"])
    later = dict(zip(MUTABLE_FIELDS, changing, strict=True))
    later["nsfw"] = json.loads(later["nsfw"] or "[]")
    return Prediction(**fixed, **{k: v for k, v in later.items() if v is not None})


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring a data folder of version 0.1 (one JSON body per row) up to date.

    Its predictions are kept, with their charges from its ``ledger.sqlite3``.
    """
    (version,) = db.execute("PRAGMA user_version").fetchone()
    columns = [row[1] for row in db.execute("PRAGMA table_info(predictions)")]
    if version >= SCHEMA_VERSION:
        return
    if "api_key" in columns and "body" not in columns:
        _hash_stored_keys(db)
    if "body" not in columns:
        if columns and "notified_at" not in columns:
            _add_notified_at(db)
        if columns and "device" not in columns:
            _add_device(db)
        return
    log.info("migrating %s to schema version %d", db, SCHEMA_VERSION)
    db.execute("ALTER TABLE predictions RENAME TO predictions_v1")
    db.execute("DROP INDEX IF EXISTS predictions_created")
    db.executescript(_SCHEMA)
    fields = {f.name for f in dataclasses.fields(Prediction)}
    charges: dict[str, int] = {}
    ledger = path.with_name("ledger.sqlite3")
    if ledger.exists():
        with contextlib.closing(sqlite3.connect(ledger)) as old:
            with contextlib.suppress(sqlite3.Error):
                charges = dict(
                    old.execute("SELECT prediction_id, amount_micros FROM charges")
                )
    rows = []
    for seq, (body,) in enumerate(
        db.execute("SELECT body FROM predictions_v1 ORDER BY created_at, rowid"), 1
    ):
        values = _hashed_key(json.loads(body))
        p = Prediction(**{k: v for k, v in values.items() if k in fields})
        rows.append(_row(p, seq, int(charges.get(p.id, 0))))
    db.execute("BEGIN")
    db.executemany(_INSERT_PREDICTION, rows)
    db.execute("DROP TABLE predictions_v1")
    db.execute(_TAKEN_AS_NOTIFIED)
    db.execute("COMMIT")


_TAKEN_AS_NOTIFIED = "UPDATE predictions SET notified_at = 0 WHERE notified_at IS NULL"
"""Rows of a version that did not record its webhooks: taken as sent, so that
an upgrade does not send every old webhook again."""


def _add_notified_at(db: sqlite3.Connection) -> None:
    """Bring a data folder of schema version 3 to 4: a column for when a
    prediction's webhook was done (``Prediction.notified_at``)."""
    log.info("adding notified_at to %s (schema version 4)", db)
    db.execute("BEGIN")
    db.execute("ALTER TABLE predictions ADD COLUMN notified_at")
    db.execute(_TAKEN_AS_NOTIFIED)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")


def _add_device(db: sqlite3.Connection) -> None:
    """Bring a data folder of schema version 4 to 5: a column for the device a
    render ran on (``Prediction.device``)."""
    log.info("adding device to %s (schema version 5)", db)
    db.execute("BEGIN")
    db.execute("ALTER TABLE predictions ADD COLUMN device")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")


def _hashed_key(values: dict[str, Any]) -> dict[str, Any]:
    """A record of an older version with its plain API key: its hash and mask instead."""
    key = values.pop("api_key", None)
    if isinstance(key, str):
        values.setdefault("key_id", key_id(key))
        values.setdefault("key_hint", mask_key(key))
    return values


def _hash_stored_keys(db: sqlite3.Connection) -> None:
    """Bring a data folder of schema version 2 (plain API keys) to version 3.

    Every key is replaced by its hash (``core.keys``), then the file is vacuumed
    so that no page keeps the plain text.
    """
    log.info("hashing the API keys stored in %s (schema version 3)", db)
    db.execute("BEGIN")
    updates = []
    for seq, record in db.execute("SELECT seq, record FROM predictions").fetchall():
        values = _hashed_key(json.loads(record))
        updates.append(
            (json.dumps(values, separators=(",", ":")), values.get("key_id", ""), seq)
        )
    db.execute("ALTER TABLE predictions RENAME COLUMN api_key TO key_id")
    db.executemany(
        "UPDATE predictions SET record = ?, key_id = ? WHERE seq = ?", updates
    )
    # Spend carried over from pruned predictions is kept by key too.
    bounds = (CARRIED, _after(CARRIED))
    carried: dict[str, int] = {}
    for key, value in db.execute(
        "SELECT key, value FROM kv WHERE key >= ? AND key < ?", bounds
    ).fetchall():
        hashed = CARRIED + key_id(key[len(CARRIED) :])
        carried[hashed] = carried.get(hashed, 0) + int(value)
    db.execute("DELETE FROM kv WHERE key >= ? AND key < ?", bounds)
    db.executemany(
        "INSERT INTO kv (key, value) VALUES (?, ?)",
        [(k, str(v)) for k, v in carried.items()],
    )
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")
    db.execute("VACUUM")
