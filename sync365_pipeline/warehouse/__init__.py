"""DuckDB warehouse: schema and migrations, atomic slice writes, analyst views and copy."""

from sync365_pipeline.warehouse.connection import WarehouseLocked, WarehouseUnwritable
from sync365_pipeline.warehouse.datasets import dataset_frames
from sync365_pipeline.warehouse.quality import QualityResult
from sync365_pipeline.warehouse.rows import (
    AppCredentialRow,
    CheckResultRow,
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
    UserDeltaLink,
    UserDeltaSlice,
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
    "CheckResultRow",
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
    "QualityResult",
    "RawPayload",
    "SkippedRecord",
    "TenantStatusRow",
    "UserDeltaLink",
    "UserDeltaSlice",
    "Warehouse",
    "WarehouseLocked",
    "WarehouseUnwritable",
    "dataset_frames",
    "remove_abandoned_stages",
    "remove_stage",
    "staged_files",
    "write_stage",
]
