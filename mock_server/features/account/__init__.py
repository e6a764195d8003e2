"""The account: charges, balances, history, deletion, catalogue and prices."""

from __future__ import annotations

from .catalogue import model_catalogue
from .history import RETENTION_S
from .ledger import MICROS, UNLIMITED_BALANCE, Account
from .routes import AccountHandlers, account_routes

__all__ = [
    "MICROS",
    "RETENTION_S",
    "UNLIMITED_BALANCE",
    "Account",
    "AccountHandlers",
    "account_routes",
    "model_catalogue",
]
