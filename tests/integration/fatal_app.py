"""The served API plus two test-only routes: this worker's pid, and a real fatal error."""

from __future__ import annotations

import os

from fastapi import FastAPI

from adstream.api import create_api_from_env
from tests.librdkafka_faults import inject_fatal_error


def create() -> FastAPI:
    app = create_api_from_env()

    @app.get("/_test/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.post("/_test/fatal")
    async def fatal() -> dict[str, int]:
        inject_fatal_error(app.state.publisher._producer)
        return {"pid": os.getpid()}

    return app
