"""A legacy CMDB CRUD service (FastAPI, in memory) that joins Whale with one line::

    app.add_middleware(WhaleASGIMiddleware, config=MAPPING, settings=settings)

Every successful create, update and delete becomes a CloudEvent on ``whale.ingest`` (``cmdb.ci.*``),
with passwords and tokens redacted. Run it: ``python examples/cmdb/app.py`` (port 8090).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Response
from pydantic import BaseModel, Field
from whale_adapters.middleware import WhaleASGIMiddleware, load_config

from whale.settings import WhaleSettings

MAPPING = Path(__file__).with_name("whale-events.yaml")


class CIIn(BaseModel):
    name: str = Field(min_length=1)
    kind: str = "server"
    owner: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class CIPatch(BaseModel):
    name: str | None = None
    kind: str | None = None
    owner: str | None = None
    attributes: dict[str, Any] | None = None


def create_app(
    settings: WhaleSettings | None = None, *, publish: bool = True, source: str | None = None
) -> FastAPI:
    """The CMDB; ``publish=False`` gives the same app without Whale (for the benchmark); ``source``
    overrides the mapping's CloudEvents source (tests use a unique one)."""
    app = FastAPI(title="legacy CMDB")
    store: dict[str, dict[str, Any]] = {}
    ids = itertools.count(1)

    @app.get("/cis")
    def list_cis() -> list[dict[str, Any]]:
        return list(store.values())

    @app.post("/cis", status_code=201)
    def create_ci(ci: CIIn) -> dict[str, Any]:
        item = {"id": f"ci-{next(ids)}", **ci.model_dump()}
        store[item["id"]] = item
        return item

    @app.get("/cis/{ci_id}")
    def get_ci(ci_id: str) -> dict[str, Any]:
        if ci_id not in store:
            raise HTTPException(404, f"no configuration item {ci_id}")
        return store[ci_id]

    @app.put("/cis/{ci_id}")
    def update_ci(ci_id: str, patch: CIPatch) -> dict[str, Any]:
        if ci_id not in store:
            raise HTTPException(404, f"no configuration item {ci_id}")
        store[ci_id].update(patch.model_dump(exclude_none=True))
        return store[ci_id]

    @app.delete("/cis/{ci_id}", status_code=204)
    def delete_ci(ci_id: str) -> Response:
        if store.pop(ci_id, None) is None:
            raise HTTPException(404, f"no configuration item {ci_id}")
        return Response(status_code=204)

    if publish:
        config = load_config(MAPPING)
        if source is not None:
            config = config.model_copy(update={"source": source})
        app.add_middleware(WhaleASGIMiddleware, config=config, settings=settings)  # the one line
    return app


def main(argv: list[str]) -> int:
    import uvicorn

    port = int(argv[0]) if argv else 8090
    uvicorn.run(create_app(WhaleSettings()), host="127.0.0.1", port=port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
