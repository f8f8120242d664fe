"""``python -m ev_bench.bare_app``: the API stage's reference, a FastAPI route returning a constant.

Served exactly as ``python -m ev_api`` serves the product (``uvicorn.run`` with the same options,
one worker, uvloop and httptools when installed, the access log of ``LOG_LEVEL``), so the ratio of
an API route to this one is what the route itself costs: dependencies, Redis, serialisation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI

app = FastAPI(title="bare route")


@app.get("/hello")
async def hello() -> dict[str, str]:
    """A constant, the least a FastAPI route can do."""
    return {"hello": "world"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true", help="as API_ACCESS_LOG=true")
    args = parser.parse_args(argv)
    # The same call as ev_api.__main__.main.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=args.access_log,
        proxy_headers=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
