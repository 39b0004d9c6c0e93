"""External ids of unmanaged experiments and trials (PutExperiment, PutTrial), in both APIs
against detorm.local: read from the routes that send them, not loaded (with a hint) from the
ones that do not, and kept when a route that does not send them reads the object again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml

from detorm.errors import NotLoaded
from detorm.local import LocalMaster
from tests.conftest import login
from tests.sdk.apis import MODES, Api, Mode

CONFIG = {"name": "core-v2", "searcher": {"name": "single", "metric": "loss"}}


@dataclass
class Unmanaged:
    master: LocalMaster
    experiment: int
    external_trial: int  # created by PutTrial with an external id
    plain_trial: int  # created by CreateTrial: no external id


@pytest.fixture(scope="module")
def unmanaged() -> Iterator[Unmanaged]:
    with LocalMaster(process=False) as master:
        http = login(master.url)  # already open: `with` would open it again
        try:
            made = _made(http)
        finally:
            http.close()
        yield Unmanaged(master, *made)


def _made(http: httpx.Client) -> tuple[int, int, int]:
    """An unmanaged experiment with an external id, its trials with and without one."""
    body = {"config": yaml.safe_dump(CONFIG), "unmanaged": True}
    put = http.put("/api/v1/experiments/by-external-id/search-7", json=body)
    assert put.status_code == 200, put.text
    experiment: int = put.json()["experiment"]["id"]
    create = {"experimentId": experiment, "hparams": {"lr": 0.1}, "unmanaged": True}
    external = http.put(
        "/api/v1/trials", json={"createTrialRequest": create, "externalTrialId": "run-a"}
    )
    assert external.status_code == 200, external.text
    plain = http.post("/api/v1/trials", json=create)
    assert plain.status_code == 200, plain.text
    return experiment, external.json()["trial"]["id"], plain.json()["trial"]["id"]


@pytest.fixture(params=MODES)
def api(
    request: pytest.FixtureRequest, unmanaged: Unmanaged, environ: dict[str, str]
) -> Iterator[Api]:
    mode: Mode = request.param
    with Api(mode, unmanaged.master.url, environ, cache=None) as api:
        yield api


def test_a_runs_search_reads_the_trials_external_ids(unmanaged: Unmanaged, api: Api) -> None:
    # across experiments (no experiment_id filter) the trials are read by the runs search
    ids = [unmanaged.external_trial, unmanaged.plain_trial]
    query = api.Trial.query(api.session).filter(id__in=ids)
    trials = {t.id: t for t in api.list(query)}
    assert {i: t.external_trial_id for i, t in trials.items()} == {
        unmanaged.external_trial: "run-a", unmanaged.plain_trial: None,
    }  # fmt: skip
    # GetTrial does not send it: reading the trial again keeps what the search read
    again = api(trials[unmanaged.external_trial].refresh())
    assert again.external_trial_id == "run-a" and again.hparams == {"lr": 0.1}


def test_get_trial_leaves_the_external_id_not_loaded(unmanaged: Unmanaged, api: Api) -> None:
    trial = api(api.session.get(api.Trial, unmanaged.external_trial))
    with pytest.raises(NotLoaded, match=r"external_trial_id.*Trial\.query\(\)\.filter\(id="):
        _ = trial.external_trial_id
    api(api.Trial.query(api.session).filter(id=trial.id).first())
    assert trial.external_trial_id == "run-a"  # the identity map's object, now loaded


def test_experiment_external_ids_come_from_the_lists(unmanaged: Unmanaged, api: Api) -> None:
    single = api(api.session.get(api.Experiment, unmanaged.experiment))
    assert single.unmanaged
    for name in ("external_experiment_id", "external_trial_id"):
        with pytest.raises(NotLoaded, match=rf"{name}.*Experiment\.query\(\)"):
            getattr(single, name)
    listed = api(api.Experiment.query(api.session).filter(id=unmanaged.experiment).first())
    assert listed is single
    # the best trial's external id: no trial has validated, there is no best trial
    assert (listed.external_experiment_id, listed.external_trial_id) == ("search-7", None)
    api(listed.refresh())  # GetExperiment sends neither: what the list read is kept
    assert listed.external_experiment_id == "search-7"
