"""Metrics of the tasks that used a checkpoint or a model version (``api_checkpoint.go``
``GetTrialMetricsByCheckpoint``, ``api_model.go`` ``GetTrialMetricsByModelVersion``,
``trials/api_trial_source_info.go``).

On the master these read the ``trial_source_infos`` links that inference and fine-tuning tasks
write through ``ReportTrialSourceInfo``. detorm.local runs no tasks and does not serve that RPC, so
no link ever exists: after the same lookups and errors as the master (the checkpoint or model
version must exist), the answer is always ``{"metrics": []}``, which is what the master answers for
a checkpoint or version no task reported on.
"""

from __future__ import annotations

from typing import Any

from detorm._wire import WireEnum

from .._app import Ctx, rpc
from .._errors import internal
from .checkpoints import checkpoint_for_action, pg_uuid
from .models import find_version

__all__: list[str] = []


class TrialSourceInfoType(WireEnum):
    """``trialv1.TrialSourceInfoType``."""

    UNSPECIFIED = ("TRIAL_SOURCE_INFO_TYPE_UNSPECIFIED", 0)
    INFERENCE = ("TRIAL_SOURCE_INFO_TYPE_INFERENCE", 1)
    FINE_TUNING = ("TRIAL_SOURCE_INFO_TYPE_FINE_TUNING", 2)


def _parse_query(ctx: Ctx) -> None:
    # grpc-gateway parses the optional enum before the RPC runs (400 on a bad value)
    if ctx.query.has("trial_source_info_type"):
        ctx.query.get_enum(
            "trial_source_info_type", TrialSourceInfoType, "trialv1.TrialSourceInfoType"
        )


@rpc("GetTrialMetricsByCheckpoint")
def get_trial_metrics_by_checkpoint(ctx: Ctx) -> dict[str, Any]:
    _parse_query(ctx)
    text = ctx.path["checkpoint_uuid"]
    checkpoint_for_action(ctx.db, text)
    if pg_uuid(text) is None:
        # the trial_source_infos query compares the uuid column with the text as given
        raise internal(
            "failed to get trial source info failed to get trial source info ERROR: invalid"
            f' input syntax for type uuid: "{text}" (SQLSTATE 22P02)'
        )
    return {"metrics": []}


@rpc("GetTrialMetricsByModelVersion", model_version_num=int)
def get_trial_metrics_by_model_version(ctx: Ctx) -> dict[str, Any]:
    _parse_query(ctx)
    find_version(ctx.db, ctx.path["model_name"], ctx.path["model_version_num"])
    return {"metrics": []}
