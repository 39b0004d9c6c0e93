"""Master information: ``GET /api/v1/master`` (no auth) and the Echo route ``/info``.

The two differ on the master: ``GetMaster`` is the ``GetMasterResponse`` proto (camelCase, every
field emitted, ``hasCustomLogo`` included: the official client requires it), ``/info`` is the Go
struct ``aproto.MasterInfo`` written by Echo's ``c.JSON`` (snake_case keys, a ``telemetry``
object, ``sso_providers`` a nil slice, so ``null``, on a cluster without SSO; ``core.go``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from starlette.responses import Response

from .._app import Ctx, echo, rpc

VERSION: Final = "0.38.1"
CLUSTER_ID: Final = str(uuid.uuid5(uuid.NAMESPACE_DNS, "detorm.local"))
CLUSTER_NAME: Final = "detorm.local"


@rpc("GetMaster")
def get_master(ctx: Ctx) -> dict[str, Any]:
    # api_master.go GetMaster; clusterMessage is an unset proto3 optional: left out
    return {
        "version": VERSION,
        "masterId": CLUSTER_ID,
        "clusterId": CLUSTER_ID,
        "clusterName": CLUSTER_NAME,
        "telemetryEnabled": False,
        "ssoProviders": [],
        "externalLoginUri": "",
        "externalLogoutUri": "",
        "branding": "determined",
        "rbacEnabled": False,
        "product": "PRODUCT_UNSPECIFIED",
        "featureSwitches": [],
        "userManagementEnabled": True,
        "strictJobQueueControl": False,
        "hasCustomLogo": False,
    }


@echo("GET", "/info")
def info(ctx: Ctx) -> Response:
    # Master.Info() in core.go; Echo's JSON encoder ends the body with a newline
    body = {
        "version": VERSION,
        "master_id": CLUSTER_ID,
        "cluster_id": CLUSTER_ID,
        "cluster_name": CLUSTER_NAME,
        "telemetry": {"enabled": False, "otel_enabled": False, "otel_endpoint": ""},
        "sso_providers": None,
    }
    text = json.dumps(body, separators=(",", ":")) + "\n"
    return Response(text.encode(), 200, media_type="application/json")
