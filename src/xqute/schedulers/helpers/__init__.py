"""Helpers several backends borrow: running a tool (``command``), guarding
local process groups against a driver's death (``guard`` + ``_reaper``), the
job names a backend derives (``names``). Nothing here knows one backend."""
