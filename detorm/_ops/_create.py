"""Creating and deleting the registry's objects at once: workspaces, projects, models, model
versions (PostWorkspace, PostProject, PostModel, PostModelVersion and their Delete twins).

A new workspace, project or model is made by its constructor (its input checks) and sent with
the POST a commit of ``session.add(obj)`` sends (``creation_call``): one body for both ways.
A creation sends the POST, merges the master's answer into the session, then reads the object
once: the master's POST answers leave fields out (PostWorkspace sends no counts and no
``pinnedAt``, PostProject no workspace name, PostModel no username), and a created object is
returned complete. A deletion forgets the object; the master deletes a workspace or project
with experiments in the background (state DELETING, then gone), which the op waits for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _wire as w
from .._plan._call import Call, path
from .._plan._edits import created_values, creation_call
from .._resources._base import Resource
from .._resources._inputs import check_iterable, check_json_object, check_text, require
from .._resources._models import Checkpoint, Model, ModelVersion, Project, User, Workspace
from .._wire import WorkspaceState
from ..errors import InvalidState, InvalidType, InvalidValue, NotFound, NotLoaded
from ._effects import Op, send
from ._polling import poll_until

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = [
    "create_model",
    "create_project",
    "create_user",
    "create_workspace",
    "delete_model",
    "delete_model_version",
    "delete_project",
    "delete_workspace",
    "register_version",
    "set_password",
]

R = TypeVar("R", bound=Resource)


def _name(where: str, value: object) -> str:
    require(where, value, str, "a non-empty str")
    assert isinstance(value, str)
    if not value.strip():
        raise InvalidValue(f"{where} cannot be empty or blank")
    check_text(where, value)
    return value


def _text(where: str, value: object) -> str:
    require(where, value, str, "a str")
    assert isinstance(value, str)
    check_text(where, value)
    return value


def _labels(where: str, value: Iterable[str]) -> list[str]:
    items = check_iterable(where, value, "a collection of str labels")
    for item in items:
        _name(f"a label of {where}", item)
    return sorted(dict.fromkeys(items))


def _created(session: Session, cls: type[R], values: dict[str, Any]) -> Op[R]:
    """Merge the POST's answer, then read the object once (complete, as a GET returns it)."""
    obj = session.merge(cls, values)
    return (yield from session._refresh(obj))


def _create_now(session: Session, cls: type[R], new: Resource) -> Op[R]:
    """Create ``new`` (made by its constructor, which checked every value) with the POST a
    commit of ``session.add(new)`` sends (creation_call: one body for both), and return the
    created object of ``session`` (``new`` itself is only the carrier of the values)."""
    if new._creating:
        # Project(workspace=new_ws): a commit creates the workspace first; at once, there is no
        # workspace id to send.
        raise NotLoaded(_parent_is_new(new))
    call = creation_call(new, new.__dict__.get("workspace_id")).call
    response = yield from send(call)
    return (yield from _created(session, cls, created_values(new, response.content)))


def _parent_is_new(new: Resource) -> str:
    (parent,) = (new._creating or {}).values()
    kind = type(parent).__name__
    return (
        f"{type(new).__name__}.create(workspace): the {kind} {parent.__dict__.get('name')!r} is "
        f"new and has no id until it is created: {kind}.create(...) it first, or session.add() "
        "both, then session.commit()"
    )


def _as_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    # The signatures take any Mapping; anything else goes on as given, for the constructor to
    # refuse with a typed error.
    return dict(value) if isinstance(value, Mapping) else value


def create_workspace(
    session: Session,
    cls: type[R],
    name: str,
    *,
    checkpoint_storage_config: Mapping[str, Any] | None = None,
    default_compute_pool: str | None = None,
    default_aux_pool: str | None = None,
) -> Op[R]:
    """PostWorkspace (the master refuses a name taken by another workspace: 409)."""
    new = Workspace(
        name=name,
        checkpoint_storage_config=_as_dict(checkpoint_storage_config),
        default_compute_pool="" if default_compute_pool is None else default_compute_pool,
        default_aux_pool="" if default_aux_pool is None else default_aux_pool,
    )
    return (yield from _create_now(session, cls, new))


def create_project(
    session: Session,
    cls: type[R],
    workspace: Workspace | int,
    name: str,
    *,
    description: str = "",
    key: str | None = None,
) -> Op[R]:
    """PostProject in ``workspace`` (the master refuses a name taken in that workspace, and a
    key taken anywhere: 409; without a key it makes one from the name)."""
    new = Project(name=name, workspace=workspace, description=description, key=key)
    return (yield from _create_now(session, cls, new))


def create_model(
    session: Session,
    cls: type[R],
    name: str,
    *,
    workspace: Workspace | int | None = None,
    description: str = "",
    notes: str = "",
    labels: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Op[R]:
    """PostModel (in the Uncategorized workspace unless ``workspace``; names are unique across
    the cluster: 409)."""
    new = Model(
        name=name, workspace=workspace, description=description, notes=notes, labels=labels,
        metadata=_as_dict(metadata),
    )  # fmt: skip
    return (yield from _create_now(session, cls, new))


def register_version(
    session: Session,
    cls: type[R],
    model: Model,
    checkpoint: Checkpoint | str,
    *,
    name: str = "",
    comment: str = "",
    notes: str = "",
    labels: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Op[R]:
    """PostModelVersion: ``checkpoint`` (COMPLETED) as the model's next version."""
    if isinstance(checkpoint, Checkpoint):
        uuid = checkpoint.uuid
    else:
        uuid = _name("register_version(checkpoint)", checkpoint)
    body: dict[str, Any] = {
        "modelName": str(model.id),  # {model_name} takes the id too: a rename cannot break it
        "checkpointUuid": uuid,
        "name": _text("register_version(name)", name),
        "comment": _text("register_version(comment)", comment),
        "notes": _text("register_version(notes)", notes),
        "labels": _labels("register_version(labels)", labels),
    }
    if metadata is not None:
        check_json_object("register_version(metadata)", metadata)
        body["metadata"] = dict(metadata)
    call = Call("POST", path("/api/v1/models/{m}/versions", m=model.id), body=body)
    response = yield from send(call)
    found = w.ModelVersionResponse.model_validate_json(response.content).model_version
    assert found is not None
    return (yield from _created(session, cls, ModelVersion.values_from_wire(found)))


# --- deletions --------------------------------------------------------------------------------
def _gone(session: Session, obj: R, call: Call) -> Op[None]:
    """Send a delete whose answer says whether the master finished (DeleteWorkspace and
    DeleteProject answer ``completed: false`` and go on in the background while there were
    experiments); wait until the object is gone, or raise if the master's deletion failed."""
    response = yield from send(call)
    if not w.DeleteResponse.model_validate_json(response.content).completed:

        def done(current: R) -> bool:
            if current.__dict__.get("state") == WorkspaceState.DELETE_FAILED:
                message = current.__dict__.get("error_message", "")
                raise InvalidState(f"the master failed to delete {_shown(current)}: {message}")
            return False

        try:
            yield from poll_until(
                session, obj, done, lambda o: f"{_shown(o)} is still being deleted",
                timeout=None, interval=None, where="delete",
            )  # fmt: skip
        except NotFound:
            pass  # gone: the deletion is complete
    session._forget(obj)


def _shown(obj: Resource) -> str:
    return f"{type(obj).__name__} {obj.pk}"


def delete_workspace(session: Session, workspace: Workspace) -> Op[None]:
    """DeleteWorkspace: the master deletes its projects and their experiments with it, and
    refuses a workspace that still holds models (FailedPrecondition)."""
    call = Call("DELETE", path("/api/v1/workspaces/{id}", id=workspace.id))
    yield from _gone(session, workspace, call)


def delete_project(session: Session, project: Project) -> Op[None]:
    """DeleteProject: the master deletes its experiments with it."""
    yield from _gone(session, project, Call("DELETE", path("/api/v1/projects/{id}", id=project.id)))


def delete_model(session: Session, model: Model) -> Op[None]:
    """DeleteModel: the model and its versions (the checkpoints stay)."""
    yield from send(Call("DELETE", path("/api/v1/models/{m}", m=model.id)))
    session._forget(model)


def delete_model_version(session: Session, version: ModelVersion) -> Op[None]:
    """DeleteModelVersion (the checkpoint stays)."""
    call = Call(
        "DELETE",
        path("/api/v1/models/{m}/versions/{v}", m=version.model_id, v=version.version),
    )
    yield from send(call)
    session._forget(version)


# --- users ------------------------------------------------------------------------------------
def create_user(
    session: Session,
    cls: type[R],
    username: str,
    *,
    password: str | None = None,
    admin: bool = False,
    active: bool = True,
    display_name: str = "",
    remote: bool = False,
) -> Op[R]:
    """PostUser (admins only). The password travels as the master reads an unhashed one
    (``isHashed: false``: the master applies the client-side salt and hash itself); it is never
    kept, logged or shown."""
    user: dict[str, Any] = {
        "username": _name("User.create(username)", username),
        "admin": _flag("User.create(admin)", admin),
        "active": _flag("User.create(active)", active),
        "remote": _flag("User.create(remote)", remote),
    }
    if display_name:
        user["displayName"] = _text("User.create(display_name)", display_name)
    body: dict[str, Any] = {"user": user, "isHashed": False}
    if password is not None:
        body["password"] = _password("User.create(password)", password)
    response = yield from send(Call("POST", "/api/v1/users", body=body))
    found = w.UserResponse.model_validate_json(response.content).user
    assert found is not None
    return (yield from _created(session, cls, User.values_from_wire(found)))


def set_password(session: Session, user: User, password: str) -> Op[None]:
    """SetUserPassword: the body is the bare password (a JSON string), hashed by the master."""
    body = _password("set_password(password)", password)
    call = Call("POST", path("/api/v1/users/{id}/password", id=user.id), body=body)
    response = yield from send(call)
    found = w.UserResponse.model_validate_json(response.content).user
    if found is not None:
        session._confirmed_value(user, "modified_at", found.modified_at)


def _flag(where: str, value: object) -> bool:
    require(where, value, bool, "a bool")
    assert isinstance(value, bool)
    return value


def _password(where: str, value: object) -> str:
    # The value itself never appears in a message.
    if not isinstance(value, str):
        raise InvalidType(f"{where} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidValue(f"{where} cannot contain a NUL character")
    return value
