"""Helpers several backends borrow: running a tool (``command``), guarding
local process groups against a driver's death (``guard`` + ``_reaper``), the
job names a backend derives (``names``), private job files (``files``).
Nothing here knows one backend."""
