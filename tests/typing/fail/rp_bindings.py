"""Resource-pool bindings take pool names (str), and answer pool names."""

import detorm

session = detorm.Session("http://x")
ws = session.get(detorm.Workspace, 2)
ws.bind_resource_pools(3)  # E: Argument 1 to "bind_resource_pools" of "Workspace" has incompatible type "int"; expected "str"
ws.unbind_resource_pools(["gpu"])  # E: Argument 1 to "unbind_resource_pools" of "Workspace" has incompatible type "list[str]"; expected "str"
n: int = ws.resource_pools()  # E: Incompatible types in assignment (expression has type "list[str]", variable has type "int")
