"""The service account controller: every active namespace has a `default` ServiceAccount (upstream's
pkg/controller/serviceaccount ServiceAccountsController).

Contracts:

* The queue holds namespace names.  A namespace added or updated, or one of the ensured service
  accounts deleted, queues its namespace; a pass creates whichever ensured accounts the cache lacks.
* Only namespaces in phase Active and not being deleted get accounts; a namespace that starts
  terminating (or is gone) by the time the create lands is not an error.
* Creating an account that exists already (the cache lagged) is not an error either: the create
  is its own check, so passes are idempotent and the controller is safe to restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubelite.client.interface import builtin
from kubelite.controllers.base import Controller, ControllerContext
from kubelite.controllers.namespace import NAMESPACES, is_namespace_active
from kubelite.machinery.errors import ApiError
from kubelite.machinery.meta import name_of, namespace_of

log = logging.getLogger(__name__)

SERVICE_ACCOUNTS = builtin("", "serviceaccounts")
DEFAULT_SERVICE_ACCOUNTS = ("default",)


def is_namespace_terminating_error(exc: ApiError) -> bool:
    """The API refused to create content in a namespace being deleted (403 with upstream's
    NamespaceTerminating cause, or its message when the server sends no cause)."""
    if exc.code != 403:
        return False
    if any(cause.reason == "NamespaceTerminating" for cause in exc.causes):
        return True
    return "because it is being terminated" in exc.message


def missing_service_accounts(namespace: str, wanted: Sequence[str], existing: set[str]) -> list[dict[str, Any]]:
    """The ServiceAccount objects to create in `namespace`: the wanted names not in `existing`."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
        for name in wanted
        if name not in existing
    ]


class ServiceAccountController(Controller):
    """Ensures `service_accounts` (default: "default") exist in every active namespace."""

    name = "serviceaccount-controller"

    def __init__(
        self, context: ControllerContext, *, service_accounts: Sequence[str] = DEFAULT_SERVICE_ACCOUNTS
    ) -> None:
        super().__init__(context)
        self.service_accounts = tuple(service_accounts)
        self.namespaces = self.informer(NAMESPACES)
        self.accounts = self.informer(SERVICE_ACCOUNTS)
        self.namespaces.add_handler(self._namespace_seen, lambda _old, new: self._namespace_seen(new))
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _namespace_seen(self, namespace: dict[str, Any]) -> None:
        self.enqueue_key(name_of(namespace))

    def _account_deleted(self, account: dict[str, Any]) -> None:
        if name_of(account) in self.service_accounts:
            self.enqueue_key(namespace_of(account))

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None or not is_namespace_active(namespace):
            return
        existing = {name for name in self.service_accounts if self.accounts.get(f"{key}/{name}") is not None}
        failures: list[ApiError] = []
        for account in missing_service_accounts(key, self.service_accounts, existing):
            try:
                await self.client.create(SERVICE_ACCOUNTS, account, key)
            except ApiError as exc:
                if exc.code == 404 or exc.reason == "AlreadyExists" or is_namespace_terminating_error(exc):
                    continue
                failures.append(exc)
            else:
                log.debug(
                    "service account created",
                    extra={"controller": self.name, "namespace": key, "name": name_of(account)},
                )
        if failures:
            raise failures[0]


__all__ = [
    "DEFAULT_SERVICE_ACCOUNTS",
    "SERVICE_ACCOUNTS",
    "ServiceAccountController",
    "is_namespace_terminating_error",
    "missing_service_accounts",
]
