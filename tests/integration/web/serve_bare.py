"""``python serve_bare.py DB``: serve the HTTP API of DB with no pool (nothing
submitted ever runs), print the URL, and stop when stdin closes.

The schemathesis test runs it in a process of its own: Hypothesis parses
Python source (ast) while it runs, and CPython 3.11.7's parser is not safe
against another thread compiling at the same time (the server's threads do,
through Jinja2 and typing), which fails at random with "AST constructor
recursion depth mismatch".
"""

from __future__ import annotations

import asyncio
import sys

from xqute.monitoring.listen import parse_http
from xqute.queue import SqliteJobScheduler
from xqute.web.server import HttpServer


async def main(db_path: str) -> None:
    server = HttpServer(SqliteJobScheduler(db_path), parse_http("127.0.0.1:0"))
    url = await server.start()
    print(url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
