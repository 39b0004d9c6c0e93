"""A workspace's resource pools are a set of pool names (str), edited in place."""

import detorm

session = detorm.Session("http://x")
ws = session.get(detorm.Workspace, 2)
ws.resource_pools.add(3)  # E: Argument 1 to "add" of "TagSet" has incompatible type "int"; expected "str"
ws.resource_pools()  # E: "TagSet" not callable
n: int = ws.resource_pools  # E: Incompatible types in assignment (expression has type "TagSet", variable has type "int")
