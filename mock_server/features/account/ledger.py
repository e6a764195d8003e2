"""The account's rules: what a key has spent, its balance, and the balance check.

Every prediction is charged at creation, per API key, at the model registry's
price; the store commits the charge together with the prediction. A prediction
that ends in one of the contract's refunded statuses (``x-refunded``: failed,
cancelled, timeout) is refunded. Refunds are worked out when a balance is read,
from the predictions' statuses, so ledger and predictions cannot disagree, not
even after a crash.

With ``settings.starting_balance`` set, each key starts with that many dollars
and a submit that the balance cannot pay is refused with HTTP 403 (the docs'
"Forbidden (account issue)" is the best fit [inferred]). Unset (None), spending
is unlimited and the balance shows :data:`UNLIMITED_BALANCE` minus the spend.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.clock import ServerClock
from ...core.components import SubmitRequest
from ...core.keys import key_id
from ...core.lifecycle import is_refunded
from ...core.prediction import Prediction
from ...core.store import MICROS, Store
from ...errors import ApiError

__all__ = [
    "DEDUCT",
    "MICROS",
    "REFUND",
    "UNLIMITED_BALANCE",
    "Account",
    "BillingRow",
]

UNLIMITED_BALANCE = 1_000_000.0
"""What an unlimited account's balance starts from (minus what it spent). [inferred]"""


DEDUCT = "deduct"
"""The billing type of a charge. [SDK-observed: clients search for it]"""
REFUND = "refund"
"""The billing type of a charge given back. [inferred]"""


@dataclass(frozen=True)
class BillingRow:
    """One line of a key's bill: a charge, or its refund."""

    uuid: str
    billing_type: str
    price: float
    """USD, positive for both types."""
    created_at: float
    prediction: Prediction


class Account:
    """Balances and the balance check (an :class:`~...core.components.Admission`)."""

    def __init__(
        self,
        *,
        store: Store,
        clock: ServerClock,
        starting_balance: float | None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.starting_balance = starting_balance

    def refunded(self, p: Prediction) -> bool:
        return is_refunded(p, self.clock.now())

    def spent(self, key: str) -> float:
        """Net spend of a key (given by its id, ``core.keys.key_id``): charges of
        predictions the store still has, less refunds, plus the net charges of
        predictions retention pruned (they stay spent).

        A reset forgets predictions and, with them, their charges. [inferred]
        """
        total = self.store.carried_spend(key)
        for pid, micros in self.store.charges(key).items():
            p = self.store.get(pid)
            if p is not None and not self.refunded(p):
                total += micros
        return total / MICROS

    def billing_rows(self, key: str) -> list[BillingRow]:
        """The bill of a key (given by its id), oldest first: a ``deduct`` row per
        charged prediction the store still has, and a ``refund`` row, dated when
        the task could end, for each one refunded. Pruned predictions leave the
        bill (their spend stays carried). [inferred]
        """
        rows = []
        for pid, micros in self.store.charges(key).items():
            p = self.store.get(pid)
            if p is None:
                continue
            price = micros / MICROS
            rows.append(BillingRow(f"{pid}-{DEDUCT}", DEDUCT, price, p.created_at, p))
            if self.refunded(p):
                ended = max(p.done_at, p.created_at)
                rows.append(BillingRow(f"{pid}-{REFUND}", REFUND, price, ended, p))
        rows.sort(key=lambda row: (row.created_at, row.uuid))
        return rows

    def balance(self, key: str) -> float:
        """The balance of a key, given by its id (``core.keys.key_id``)."""
        start = (
            UNLIMITED_BALANCE
            if self.starting_balance is None
            else self.starting_balance
        )
        return round(start - self.spent(key), 6)

    def admit(self, request: SubmitRequest) -> None:
        """Refuse a submit the balance cannot pay (only with a starting balance)."""
        if self.starting_balance is None:
            return
        price = request.price
        balance = self.balance(key_id(request.api_key))
        if balance < price:
            raise ApiError(
                403,
                f"Insufficient balance: the account has ${balance:.2f} and "
                f"{request.model.id} costs ${price:.2f} per run; top up to continue.",
            )
