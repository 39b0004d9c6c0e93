"""Master information: ``GET /api/v1/master`` (no auth) and the Echo route ``/info``."""

from __future__ import annotations

import uuid
from typing import Any, Final

from .._app import Ctx, echo, rpc

VERSION: Final = "0.38.1"
CLUSTER_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_DNS, "detorm.local"))


def _info(ctx: Ctx) -> dict[str, Any]:
    return {
        "version": VERSION,
        "masterId": CLUSTER_ID,
        "clusterId": CLUSTER_ID,
        "clusterName": "detorm.local",
        "telemetryEnabled": False,
        "ssoProviders": [],
        "externalLoginUri": "",
        "externalLogoutUri": "",
        "branding": "determined",
        "rbacEnabled": False,
        "strictJobQueueControl": False,
        "userManagementEnabled": True,
        "featureSwitches": [],
        "product": "PRODUCT_UNSPECIFIED",
    }


@rpc("GetMaster")
def get_master(ctx: Ctx) -> dict[str, Any]:
    return _info(ctx)


@echo("GET", "/info")
def info(ctx: Ctx) -> dict[str, Any]:
    return _info(ctx)
