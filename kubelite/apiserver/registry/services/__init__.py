"""Services in the API server: ClusterIP and node-port allocation, and the bootstrap objects.

`allocator` (pure ranges) ← `ledger` (who holds what; allocation decisions) ← `store` (the object
store hooks) ; `bootstrap` writes the cluster's own Services, Endpoints and ConfigMap at start-up.
"""

from kubelite.apiserver.registry.services.bootstrap import ClusterObjects, advertise_address
from kubelite.apiserver.registry.services.ledger import ServiceLedger
from kubelite.apiserver.registry.services.store import ServiceStore

__all__ = ["ClusterObjects", "ServiceLedger", "ServiceStore", "advertise_address"]
