"""Commands, notebooks, shells and TensorBoards on detorm.local, as ``api_command.go``,
``api_notebook.go``, ``api_shell.go``, ``api_tensorboard.go`` and ``command/`` behave, run by the
simulated cluster."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import httpx
import pytest
from determined.common.api import bindings
from determined.common.api._session import Session

from detorm.local import LocalMaster, Seeder
from detorm.local import _ntsc_config as ntsc_config
from detorm.local import _scheduler as sim
from tests.conftest import error_of
from tests.local.simulation import HOUR, command, durations, launch, log_lines, ok, state

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PETNAME = r"[a-z]+-[a-z]+-[a-z]+"


@pytest.fixture(autouse=True)
def running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks start at once and commands run for an hour (until a test changes it)."""
    durations(monkeypatch)


def session(master: LocalMaster, api: httpx.Client) -> Session:
    """The official client's session (its bindings parse the responses)."""
    token = api.headers["Authorization"].removeprefix("Bearer ")
    return Session(master.url, "determined", token=token, cert=None)


# --- LaunchCommand --------------------------------------------------------------------------------


def test_launch_answers_the_queued_command_and_its_full_config(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    response = ok(api.post("/api/v1/commands", json={"config": {"entrypoint": ["echo", "hi"]}}))
    assert list(response) == ["command", "config", "warnings"]
    cmd = response["command"]
    assert list(cmd) == [
        "id", "description", "state", "startTime", "container", "displayName", "userId",
        "username", "resourcePool", "exitStatus", "jobId", "workspaceId",
    ]  # fmt: skip
    assert re.fullmatch(UUID, cmd["id"]) and re.fullmatch(UUID, cmd["jobId"])
    assert re.fullmatch(rf"Command \({PETNAME}\)", cmd["description"])
    # the response is built before the resource manager's pass: queued, no container yet
    assert cmd["state"] == "STATE_QUEUED" and cmd["container"] is None
    assert (cmd["username"], cmd["userId"], cmd["workspaceId"]) == ("determined", 2, 1)
    assert (cmd["resourcePool"], cmd["exitStatus"]) == ("default", "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", cmd["startTime"])
    config = response["config"]
    assert config["entrypoint"] == ["/run/determined/command-entrypoint.sh", "echo", "hi"]
    assert config["resources"] == {
        "devices": None, "is_single_node": None, "priority": 42, "resource_pool": "default",
        "slots": 1, "weight": 1,
    }  # fmt: skip
    assert config["environment"]["image"]["cpu"] == ntsc_config.CPU_IMAGE
    assert list(config) == sorted(config)  # a Struct: keys sorted
    assert response["warnings"] == []
    # the official bindings read it
    parsed = bindings.get_GetCommand(session(local_master, api), commandId=cmd["id"])
    assert parsed.command.state == bindings.taskv1State.RUNNING


def test_a_config_file_with_unknown_keys_is_refused(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/commands", json={"config": {"entrypoint": ["true"], "resources": {"slotz": 2}}}
    )
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        "failed to prepare launch params: unable to decode the merged config:"
        ' {"entrypoint":["true"],"resources":{"slotz":2}}: json: unknown field "slotz"'
    )
    response = api.post("/api/v1/commands", json={"config": {"resources": {"slots": "two"}}})
    assert error_of(response)["error"].endswith(
        "json: cannot unmarshal string into Go struct field ResourcesConfig.resources.slots"
        " of type int"
    )


@pytest.mark.parametrize(
    ("config", "status", "message"),
    [
        ({"resources": {"resource_pool": "gpus"}}, 400,
         "failed to prepare launch params: resource pool gpus does not exist or is not available"
         " to workspace id 1"),
        ({"resources": {"slots": 9}}, 400,
         "failed to prepare launch params: validating resources: request unfulfillable, please try"
         " requesting less slots"),
        # no pool is picked for a negative slot count: the error names the pool ""
        ({"resources": {"slots": -1}}, 400,
         "failed to prepare launch params: resource pool  does not exist or is not available to"
         " workspace id 1"),
    ],
)  # fmt: skip
def test_launch_resolves_the_pool_and_slots(
    api: httpx.Client, config: dict[str, object], status: int, message: str
) -> None:
    response = api.post("/api/v1/commands", json={"config": {"entrypoint": ["true"], **config}})
    assert response.status_code == status
    assert error_of(response)["error"] == message


def test_launch_in_a_missing_or_archived_workspace_is_not_found(
    local_master: LocalMaster, api: httpx.Client
) -> None:
    with Seeder(local_master.database) as seed:
        archived = seed.workspace("old", archived=True)
    response = api.post("/api/v1/commands", json={"workspaceId": 99, "config": {}})
    assert response.status_code == 404
    assert error_of(response) == {
        "code": 5, "reason": "NotFound",
        "error": "failed to prepare launch params: workspace '99' not found",
    }  # fmt: skip
    # an archived workspace passes the launch parameters, then isNTSCPermittedToLaunch refuses
    response = api.post("/api/v1/commands", json={"workspaceId": archived, "config": {}})
    assert response.status_code == 404
    assert error_of(response)["error"] == f"workspace '{archived}' not found"
    assert ok(api.get("/api/v1/commands"))["commands"] == []


def test_the_context_directory_limit_is_the_grpc_receive_limit(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = base64.b64encode(b"x" * 1000).decode()
    body = {"config": {"entrypoint": ["true"]}, "files": [{"path": "a.txt", "type": 48,
            "content": content, "mtime": "1700000000", "mode": 420}]}  # fmt: skip
    size = ntsc_config.launch_message_size(
        {"config": body["config"], "files": [{**body["files"][0], "mtime": 1700000000}]}  # type: ignore[dict-item]
    )
    # config: 2 + (2 + (2+10 + 2+(2 + (2 + (2+4))))) = 28
    # files: 3 + (2+5 + 1+1 + 3+1000 + 1+5 + 1+2) = 1024
    assert size == 1052
    monkeypatch.setattr(ntsc_config, "MAX_RECV_MESSAGE_BYTES", size - 1)
    response = api.post("/api/v1/commands", json=body)
    assert response.status_code == 429
    assert error_of(response) == {
        "code": 8, "reason": "ResourceExhausted",
        "error": f"grpc: received message larger than max ({size} vs. {size - 1})",
    }  # fmt: skip
    monkeypatch.setattr(ntsc_config, "MAX_RECV_MESSAGE_BYTES", size)
    assert ok(api.post("/api/v1/commands", json=body))["command"]["state"] == "STATE_QUEUED"


def test_work_dir_and_a_context_cannot_go_together(api: httpx.Client) -> None:
    files = [{"path": "a.txt", "type": 48, "content": "aGk=", "mode": 420}]
    body = {"config": {"entrypoint": ["true"], "work_dir": "/tmp"}, "files": files}
    response = api.post("/api/v1/commands", json=body)
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        "failed to prepare launch params: cannot set work_dir and context directory at the"
        " same time"
    )
    launched = ok(api.post("/api/v1/commands", json={**body, "config": {"entrypoint": ["ls"]}}))
    assert launched["config"]["work_dir"] is None
    context = ok(api.get(f"/api/v1/tasks/{launched['command']['id']}/context_directory"))
    assert base64.b64decode(context["b64Tgz"])[:2] == b"\x1f\x8b"  # a tar.gz


def test_templates_fill_the_config_under_the_request(api: httpx.Client) -> None:
    template = {"description": "from a template", "resources": {"priority": 7, "slots": 2},
                "environment": {"environment_variables": ["A=1"]}, "unknown_key": True}  # fmt: skip
    ok(api.post("/api/v1/templates/tpl", json={"name": "tpl", "config": template}))
    launched = ok(
        api.post(
            "/api/v1/commands",
            json={"templateName": "tpl", "config": {"entrypoint": ["true"],
                  "environment": {"environment_variables": ["B=2"]}}},
        )
    )  # fmt: skip
    assert launched["command"]["description"] == "from a template"
    config = launched["config"]
    # the template's slots do not count: the request's resources (default 1) are resolved first
    assert (config["resources"]["priority"], config["resources"]["slots"]) == (7, 1)
    # environment variables append (RuntimeItems.UnmarshalJSON)
    assert config["environment"]["environment_variables"]["cpu"] == ["A=1", "B=2"]
    response = api.post("/api/v1/commands", json={"templateName": "nope", "config": {}})
    assert response.status_code == 404
    assert error_of(response)["error"] == (
        "failed to prepare launch params: template 'nope' not found"
    )


def test_unauthenticated_requests_are_refused(local_master: LocalMaster) -> None:
    with httpx.Client(base_url=local_master.url) as anonymous:
        for method, path in (
            ("GET", "/api/v1/commands"), ("POST", "/api/v1/commands"), ("GET", "/api/v1/tasks"),
            ("GET", "/api/v1/job-queues-v2"),
        ):  # fmt: skip
            response = anonymous.request(method, path)
            assert response.status_code == 401
            assert error_of(response)["error"] == "token missing"


# --- reading --------------------------------------------------------------------------------------


@pytest.fixture
def three(local_master: LocalMaster, api: httpx.Client) -> Iterator[list[dict[str, object]]]:
    """Three running commands: two of determined (the second in workspace 'team'), one of
    admin."""
    from tests.conftest import login

    with Seeder(local_master.database) as seed:
        team = seed.workspace("team")
    admin = login(local_master.url, "admin")
    try:
        tasks = [
            command(api, "a", description="b-first"),
            launch(api, workspaceId=team, config={"entrypoint": ["b"], "description": "a-second"}),
            command(admin, "c", description="c-third"),
        ]
        yield tasks
    finally:
        admin.close()


def ids(response: httpx.Response, key: str = "commands") -> list[str]:
    return [item["id"] for item in ok(response)[key]]


def test_get_commands_filters_sorts_and_pages_in_memory(
    api: httpx.Client, three: list[dict[str, str]]
) -> None:
    by_id = sorted(task["id"] for task in three)
    assert ids(api.get("/api/v1/commands")) == by_id
    assert ids(api.get("/api/v1/commands", params={"users": "admin"})) == [three[2]["id"]]
    assert ids(api.get("/api/v1/commands", params={"userIds": [1, 2]})) == by_id
    assert ids(api.get("/api/v1/commands", params={"workspaceId": 1})) == sorted(
        [three[0]["id"], three[2]["id"]]
    )
    assert ids(api.get("/api/v1/commands", params={"sortBy": "SORT_BY_DESCRIPTION"})) == [
        three[1]["id"], three[0]["id"], three[2]["id"],
    ]  # fmt: skip
    assert ids(
        api.get(
            "/api/v1/commands", params={"sortBy": "SORT_BY_START_TIME", "orderBy": "ORDER_BY_DESC"}
        )
    ) == [three[2]["id"], three[1]["id"], three[0]["id"]]
    page = ok(api.get("/api/v1/commands", params={"offset": 1, "limit": 1}))
    assert page["pagination"] == {
        "offset": 1,
        "limit": 1,
        "startIndex": 1,
        "endIndex": 2,
        "total": 3,
    }
    assert [c["id"] for c in page["commands"]] == by_id[1:2]
    # in-memory pagination: limit 0 is everything, -1 from the end; out of range is a 400
    assert ids(api.get("/api/v1/commands", params={"offset": -1})) == by_id[2:]
    response = api.get("/api/v1/commands", params={"offset": 4})
    assert (response.status_code, error_of(response)["error"]) == (400, "offset out of bounds")


def test_sorting_by_workspace_panics_on_the_master(
    api: httpx.Client, three: list[dict[str, str]]
) -> None:
    """SORT_BY_WORKSPACE_ID is 5, a field number no task message has."""
    response = api.get("/api/v1/commands", params={"sortBy": "SORT_BY_WORKSPACE_ID"})
    assert response.status_code == 500
    assert error_of(response)["error"] == (
        "runtime error: invalid memory address or nil pointer dereference"
    )
    # with fewer than two tasks there is nothing to compare
    one = api.get("/api/v1/commands", params={"sortBy": 5, "users": "admin"})
    assert ids(one) == [three[2]["id"]]


def test_get_commands_of_a_missing_workspace_is_not_found(api: httpx.Client) -> None:
    response = api.get("/api/v1/commands", params={"workspaceId": 77})
    assert response.status_code == 404
    assert error_of(response)["error"] == "workspace '77' not found"


def test_each_type_sees_only_its_own_tasks(api: httpx.Client) -> None:
    cmd = command(api, "true")
    response = api.get(f"/api/v1/shells/{cmd['id']}")
    assert response.status_code == 404
    assert error_of(response)["error"] == f"shell '{cmd['id']}' not found"
    assert ok(api.get("/api/v1/shells"))["shells"] == []
    response = api.get("/api/v1/commands/not-a-command")
    assert error_of(response)["error"] == "command 'not-a-command' not found"


# --- lifecycle ------------------------------------------------------------------------------------


def test_a_command_runs_and_exits_successfully(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, command=0.0)
    cmd = command(api, "echo", "hello", "world")
    got = ok(api.get(f"/api/v1/commands/{cmd['id']}"))["command"]
    assert got["state"] == "STATE_TERMINATED"
    assert got["exitStatus"] == "allocation exited successfully"
    assert got["container"]["state"] == "STATE_TERMINATED"
    name = cmd["description"]
    assert log_lines(api, cmd["id"]) == [
        f"Scheduling {name} (id: {cmd['id']}.1)\n",
        f"{name} was assigned to an agent\n",
        f"Resources for {name} have started\n",
        "+ echo hello world\n",
        "hello world\n",
        "resources exited successfully with a zero exit code\n",
        f"{name} was terminated: allocation stopped early after all resources exited:"
        " resources exited successfully with a zero exit code\n",
    ]


def test_states_follow_the_simulated_durations(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, pulling=HOUR)
    assert state(api, command(api, "true")) == "STATE_PULLING"
    durations(monkeypatch, starting=HOUR)
    assert state(api, command(api, "true")) == "STATE_STARTING"
    durations(monkeypatch)
    assert state(api, command(api, "true")) == "STATE_RUNNING"


def test_kill_a_running_command(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    durations(monkeypatch, kill=HOUR)
    cmd = command(api, "sleep", "100")
    killed = ok(api.post(f"/api/v1/commands/{cmd['id']}/kill"))
    assert list(killed) == ["command"]
    # the master answers with the task as the kill found it; its container exits later
    assert killed["command"]["state"] == "STATE_RUNNING"
    assert state(api, cmd) == "STATE_RUNNING"
    # a second kill within the cooldown does nothing
    ok(api.post(f"/api/v1/commands/{cmd['id']}/kill"))
    assert log_lines(api, cmd["id"])[-1] == (
        "forcibly killing allocation's remaining resources (reason: user requested kill)\n"
    )


def test_a_killed_command_terminates_and_a_second_kill_changes_nothing(
    api: httpx.Client,
) -> None:
    cmd = command(api, "sleep", "100")
    ok(api.post(f"/api/v1/commands/{cmd['id']}/kill"))
    got = ok(api.get(f"/api/v1/commands/{cmd['id']}"))["command"]
    assert (got["state"], got["exitStatus"]) == (
        "STATE_TERMINATED",
        "allocation exited successfully",
    )
    assert log_lines(api, cmd["id"])[-2:] == [
        "killed: resources failed with non-zero exit code: container failed with non-zero exit"
        " code: 137 (exit code 137)\n",
        f"{cmd['description']} was terminated: allocation killed after all resources exited:"
        " resources were killed\n",
    ]
    # KillNTSC: a completed task is returned as it is, no error
    again = ok(api.post(f"/api/v1/commands/{cmd['id']}/kill"))
    assert again["command"] == got


def test_a_queued_command_is_aborted_at_once(api: httpx.Client) -> None:
    blocker = command(api, "sleep", "100", resources={"slots": 8})
    waiting = command(api, "true")
    assert state(api, waiting) == "STATE_QUEUED"
    killed = ok(api.post(f"/api/v1/commands/{waiting['id']}/kill"))["command"]
    assert killed["state"] == "STATE_TERMINATED"
    assert killed["container"] is None
    assert log_lines(api, waiting["id"])[-1] == (
        f"{waiting['description']} was terminated: allocation aborted after exit before start:"
        " user requested kill\n"
    )
    task = ok(api.get(f"/api/v1/tasks/{waiting['id']}"))["task"]
    (allocation,) = task["allocations"]
    assert "startTime" not in allocation and "endTime" not in allocation  # never started
    assert "endTime" in task
    assert state(api, blocker) == "STATE_RUNNING"


def test_set_priority_takes_any_number(api: httpx.Client) -> None:
    cmd = command(api, "true")
    response = ok(api.post(f"/api/v1/commands/{cmd['id']}/set_priority", json={"priority": 1000}))
    assert list(response) == ["command"]
    config = ok(api.get(f"/api/v1/commands/{cmd['id']}"))["config"]
    assert config["resources"]["priority"] == 1000


def test_exited_tasks_leave_the_lists_after_a_day(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    durations(monkeypatch, command=0.0)
    cmd = command(api, "true")
    assert ids(api.get("/api/v1/commands")) == [cmd["id"]]
    monkeypatch.setattr(sim, "TERMINATED_RETENTION_SECONDS", 0.0)
    assert ids(api.get("/api/v1/commands")) == []
    response = api.get(f"/api/v1/commands/{cmd['id']}")
    assert response.status_code == 404
    # the task and its logs stay
    assert ok(api.get(f"/api/v1/tasks/{cmd['id']}"))["task"]["taskType"] == "TASK_TYPE_COMMAND"
    assert log_lines(api, cmd["id"])


def test_active_tasks_count(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    command(api, "sleep", "1")
    command(api, "sleep", "2")
    launch(api, "notebooks")
    durations(monkeypatch, pulling=HOUR)
    launch(api, "shells")  # pulling: not running
    assert ok(api.get("/api/v1/tasks/count")) == {
        "commands": 2,
        "notebooks": 1,
        "shells": 0,
        "tensorboards": 0,
    }


# --- notebooks, shells, TensorBoards --------------------------------------------------------------


def test_notebooks(local_master: LocalMaster, api: httpx.Client) -> None:
    notebook = ok(api.post("/api/v1/notebooks", json={}))
    config = notebook["config"]
    assert config["entrypoint"] == ["/run/determined/jupyter/notebook-entrypoint.sh"]
    assert config["idle_timeout"] is None
    view = notebook["notebook"]
    assert re.fullmatch(rf"JupyterLab \({PETNAME}\)", view["description"])
    token = view["serviceAddress"].split("?token=")[1]
    assert view["serviceAddress"] == f"/proxy/{view['id']}/?token={token}" and token
    got = ok(api.get(f"/api/v1/notebooks/{view['id']}"))["notebook"]
    assert got["state"] == "STATE_RUNNING"
    task = ok(api.get(f"/api/v1/tasks/{view['id']}"))["task"]
    assert task["allocations"][0]["isReady"] is True
    # its proxy answers with the token or a session, and sends anyone else to the login page
    with httpx.Client(base_url=local_master.url) as anonymous:
        assert anonymous.get(view["serviceAddress"]).status_code == 200
        redirect = anonymous.get(f"/proxy/{view['id']}/lab")
        assert redirect.status_code == 303
        assert redirect.headers["location"].startswith("/det/login?redirect=")
    assert api.get(f"/proxy/{view['id']}/").status_code == 200
    # preview: the config, nothing launched
    preview = ok(api.post("/api/v1/notebooks", json={"preview": True}))
    assert preview["notebook"]["id"] == "" and preview["notebook"]["state"] == "STATE_UNSPECIFIED"
    assert len(ok(api.get("/api/v1/notebooks"))["notebooks"]) == 1
    ok(api.post(f"/api/v1/notebooks/{view['id']}/kill"))
    gone = api.get(f"/proxy/{view['id']}/")
    assert (gone.status_code, gone.json()) == (404, {"message": f"service not found: {view['id']}"})


def test_shells(api: httpx.Client) -> None:
    shell = launch(api, "shells")
    assert list(shell) == [
        "id", "description", "state", "startTime", "container", "privateKey", "publicKey",
        "displayName", "userId", "username", "resourcePool", "exitStatus", "addresses",
        "agentUserGroup", "jobId", "workspaceId",
    ]  # fmt: skip
    assert shell["agentUserGroup"] == {
        "gid": 0,
        "group": "root",
        "id": 0,
        "uid": 0,
        "user": "root",
        "user_id": 0,
    }
    assert shell["publicKey"].startswith("ssh-ed25519 ")
    assert shell["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert shell["addresses"] == []  # not running yet
    got = ok(api.get(f"/api/v1/shells/{shell['id']}"))
    port = int(got["config"]["entrypoint"][4])
    assert 3200 <= port < 3499
    assert got["shell"]["addresses"] == [
        {
            "container_ip": "127.0.0.1",
            "container_port": port,
            "host_ip": "127.0.0.1",
            "host_port": port,
        }
    ]
    response = api.post("/api/v1/shells", json={"config": {"resources": {"is_single_node": True}}})
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        "Check Failed! 1 errors found:\n\terror found at root: resources.is_single_node cannot be"
        " set for NTSCs: expected true, got false"
    )


@pytest.fixture
def experiments(local_master: LocalMaster) -> tuple[int, int, int]:
    """Two experiments and a trial of the second."""
    with Seeder(local_master.database) as seed:
        first = seed.experiment(name="first")
        second = seed.experiment(name="second")
        trial = seed.trial(second)
    return first, second, trial


def test_tensorboards(api: httpx.Client, experiments: tuple[int, int, int]) -> None:
    first, second, trial = experiments
    response = api.post("/api/v1/tensorboards", json={})
    assert response.status_code == 400
    assert error_of(response)["error"] == "must set experiment, trial ids, or filters"
    launched = ok(
        api.post(
            "/api/v1/tensorboards",
            json={"experimentIds": [first], "trialIds": [trial], "config": {"description": "x"}},
        )
    )
    board = launched["tensorboard"]
    # the description is always generated; the slots are always 0
    assert re.fullmatch(rf"TensorBoard \({PETNAME}\)", board["description"])
    assert (board["experimentIds"], board["trialIds"]) == ([first], [trial])
    assert board["serviceAddress"] == f"/proxy/{board['id']}/"
    config = launched["config"]
    assert config["idle_timeout"] == "5m0s"
    assert config["resources"]["slots"] == 0
    entrypoint = config["entrypoint"]
    assert entrypoint[:2] == [
        "/run/determined/tensorboard/tensorboard-entrypoint.sh",
        "/run/determined/tensorboard/storage_config.json",
    ]
    assert [d.split("/tensorboard/")[1] for d in entrypoint[2].split(",")] == [
        f"experiment/{first}/", f"experiment/{second}/trial/{trial}/",
    ]  # fmt: skip
    response = api.post("/api/v1/tensorboards", json={"experimentIds": [999]})
    assert (response.status_code, error_of(response)["error"]) == (
        404,
        "experiment '999' not found",
    )
    response = api.post("/api/v1/tensorboards", json={"filters": {"name": "no such"}})
    assert (response.status_code, error_of(response)["error"]) == (400, "no experiments found")
    by_filter = ok(api.post("/api/v1/tensorboards", json={"filters": {"name": "second"}}))
    assert by_filter["tensorboard"]["experimentIds"] == []  # the request's ids
    assert f"experiment/{second}/" in by_filter["config"]["entrypoint"][2]
    killed = ok(api.post(f"/api/v1/tensorboards/{board['id']}/kill"))["tensorboard"]
    assert killed["id"] == board["id"]
    assert state(api, board, "tensorboards") == "STATE_TERMINATED"


def test_tensorboards_are_not_blocked_by_full_slots(
    api: httpx.Client, experiments: tuple[int, int, int]
) -> None:
    """Zero-slot requests are scheduled apart from the others."""
    command(api, "sleep", "1", resources={"slots": 8})
    waiting = command(api, "true")
    board = launch(api, "tensorboards", experimentIds=[experiments[0]])
    assert state(api, board, "tensorboards") == "STATE_RUNNING"
    assert state(api, waiting) == "STATE_QUEUED"


def test_deleting_a_workspace_kills_its_tasks(local_master: LocalMaster, api: httpx.Client) -> None:
    from tests.conftest import login

    admin = login(local_master.url, "admin")
    try:
        team = ok(admin.post("/api/v1/workspaces", json={"name": "team"}))["workspace"]["id"]
        cmd = launch(api, workspaceId=team, config={"entrypoint": ["sleep"]})
        assert state(api, cmd) == "STATE_RUNNING"
        ok(admin.delete(f"/api/v1/workspaces/{team}"))
    finally:
        admin.close()
    assert state(api, cmd) == "STATE_TERMINATED"
    assert log_lines(api, cmd["id"])[-3] == (
        "forcibly killing allocation's remaining resources (reason: user requested workspace"
        " delete)\n"
    )
    # GetCommands drops tasks of workspaces that are gone (AccessibleScopes)
    assert ok(api.get("/api/v1/commands"))["commands"] == []
