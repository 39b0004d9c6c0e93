"""Constructors of new objects and the create/delete operations refuse wrong arguments."""

import detorm
from detorm import Model, Project, Workspace

Workspace()  # E: Missing named argument "name" for "Workspace"
Workspace(name=3)  # E: Argument "name" to "Workspace" has incompatible type "int"; expected "str"
Workspace(nme="x")  # E: Unexpected keyword argument "nme" for "Workspace"
Project(name="p")  # E: Missing named argument "workspace" for "Project"
Model(name="m", workspace="w")  # E: Argument "workspace" to "Model" has incompatible type "str"
Project.create("w", "p")  # E: Argument 1 to "create" of "Project" has incompatible type "str"
ws: Workspace = Model.create("m")  # E: Incompatible types in assignment (expression has type "Model", variable has type "Workspace")
session = detorm.Session("http://x")
session.add("ws")  # E: Argument 1 to "add" of "SessionBase" has incompatible type "str"; expected "Resource"
