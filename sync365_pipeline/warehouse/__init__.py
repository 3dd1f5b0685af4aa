"""DuckDB warehouse: schema and migrations, atomic slice writes, analyst views and copy."""

from sync365_pipeline.warehouse.connection import WarehouseLocked, WarehouseUnwritable
from sync365_pipeline.warehouse.datasets import dataset_frames
from sync365_pipeline.warehouse.rows import (
    AppCredentialRow,
    ConsentFlag,
    CustomerAccessRow,
    CustomerChanges,
    CustomerNames,
    DatasetSlice,
    DatasetStatusRow,
    FlagKey,
    FlagKind,
    PartnerStatusRow,
    RawPayload,
    SkippedRecord,
    TenantStatusRow,
)
from sync365_pipeline.warehouse.staging import (
    remove_abandoned_stages,
    remove_stage,
    staged_files,
    write_stage,
)
from sync365_pipeline.warehouse.store import Warehouse
from sync365_pipeline.warehouse.writes import InvalidFrameError

__all__ = [
    "AppCredentialRow",
    "ConsentFlag",
    "CustomerAccessRow",
    "CustomerChanges",
    "CustomerNames",
    "DatasetSlice",
    "DatasetStatusRow",
    "FlagKey",
    "FlagKind",
    "InvalidFrameError",
    "PartnerStatusRow",
    "RawPayload",
    "SkippedRecord",
    "TenantStatusRow",
    "Warehouse",
    "WarehouseLocked",
    "WarehouseUnwritable",
    "dataset_frames",
    "remove_abandoned_stages",
    "remove_stage",
    "staged_files",
    "write_stage",
]
