"""Server-side printing: `meta.k8s.io/v1` Tables, the columns `kubectl get` shows.

kubectl 1.32 has no client-side printers for built-in kinds; every column (READY, STATUS, RESTARTS,
AGE, ...) is computed here, with upstream's column sets (`pkg/printers/internalversion`) and cell
formatting, so that kubectl's output is byte-for-byte the real cluster's.  One module per family of
kinds; `table` holds the registry and the wire form.  Everything is pure: the caller passes "now".
"""

from kubelite.apiserver.tables.custom import custom_resource_cells, custom_resource_columns
from kubelite.apiserver.tables.format import human_duration
from kubelite.apiserver.tables.table import PRINTERS, build_table, column_definitions, row_cells

__all__ = [
    "PRINTERS",
    "build_table",
    "column_definitions",
    "custom_resource_cells",
    "custom_resource_columns",
    "human_duration",
    "row_cells",
]
