"""Constructors of new objects and the create/delete operations refuse wrong arguments."""

import detorm
from detorm import Model, Project, Workspace

Workspace()  # E: Missing named argument "name" for "Workspace"
Workspace(name=3)  # E: Argument "name" to "Workspace" has incompatible type "int"; expected "str"
Workspace(nme="x")  # E: Unexpected keyword argument "nme" for "Workspace"
Project(name="p")  # E: Missing named argument "workspace" for "Project"
Model(name="m", workspace="w")  # E: Argument "workspace" to "Model" has incompatible type "str"
Project.create("w", "p")  # E: Argument 1 to "create" of "Project" has incompatible type "str"
ws: Workspace = Model.create("m")  # E: Incompatible types in assignment (expression has type "Model[Saved]", variable has type "Workspace[Saved]")
session = detorm.Session("http://x")
session.add("ws")  # E: Argument 1 to "add" of "SessionBase" has incompatible type "str"; expected "Resource"

# A new object's server fields are typed as unset until it is created; a function typed with
# the plain class takes saved objects only, and a new object cannot be deleted at once.
new = Workspace(name="w")
new_id: int = new.id  # E: Incompatible types in assignment (expression has type "int | None", variable has type "int")
count: int = Project(name="p", workspace=new).num_experiments  # E: Incompatible types in assignment (expression has type "int | None", variable has type "int")


def wants_saved(workspace: Workspace) -> int:
    return workspace.id


wants_saved(new)  # E: Argument 1 to "wants_saved" has incompatible type "Workspace[New]"; expected "Workspace[Saved]"
new.delete()  # E: Invalid self argument "Workspace[New]" to attribute function "delete" with type "Callable[[Workspace[Saved]], None]"
