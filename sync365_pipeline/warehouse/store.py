"""The DuckDB warehouse: one class composed of its parts, each in its own module.

`file` opens the file per operation (short transactions, read-only reads); `writes`, `readers`,
`flags`, `app_credentials`, `analyst_copy` and `quality` hold what the pipeline does with it. A new
domain adds its writes and readers there (or a part of its own) and joins `Warehouse` here.
"""

from __future__ import annotations

from sync365_pipeline.warehouse.analyst_copy import AnalystCopy
from sync365_pipeline.warehouse.app_credentials import AppCredentials
from sync365_pipeline.warehouse.billing import BillingReaders
from sync365_pipeline.warehouse.export import Exports
from sync365_pipeline.warehouse.flags import ConsentFlags
from sync365_pipeline.warehouse.quality import Quality
from sync365_pipeline.warehouse.readers import Readers
from sync365_pipeline.warehouse.writes import Writes


class Warehouse(
    Writes, Readers, BillingReaders, ConsentFlags, AppCredentials, AnalystCopy, Exports, Quality
):
    """The pipeline's DuckDB file and everything it writes and reads there. Cheap to construct;
    holds no connection between calls."""
