"""The router's HTTP API (FastAPI), the same on TCP and on the unix socket.

Every write goes through the command queue (``service``) and so through the
one validation path the CLI and the CloudStack entry points use: the raw
body is handed to the same loader and models, never validated a second way.
The OpenAPI description's request schemas are the bag models' own.

Security:
- over TCP (the control address only) every request, this description
  included, needs ``Authorization: Bearer <api_token>``, compared in constant
  time; the token is never logged or echoed. Without it: 401, nothing runs;
- over the unix socket (root-only, mode 0600) the kernel has authenticated
  the caller already;
- a body is refused (413) past the size limit, before it is parsed, and
  must arrive within ``BODY_DEADLINE``; it joins the command queue only once
  complete, so a slow client holds up nobody else.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from ..bags import models as bag_models
from ..bags import redact
from ..errors import BagError, RevisionNotKept, StoreError, VragentError
from ..features.monitor import results as health_results
from ..models.limits import MAX_FILE_BYTES, escape
from ..pairstate import HaState, agent_alive, status_line
from ..reconcile import subsystems
from ..settings import Settings
from ..store import Store
from .metrics import CONTENT_TYPE, Metrics
from .service import CommandService, Job, Result

BODY_DEADLINE = 30.0
SOURCES = Query(default=["request"], max_length=64)
TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}
API_VERSION = "1"

# Every declared bag type (the features' and the box's): the API's routes and schemas.
BAG_MODELS = bag_models()
SUBSYSTEMS = tuple(m.NAME for m in subsystems())


class ErrorDetail(BaseModel):
    message: str
    problems: list[str] = Field(description="one line per problem: field path, reason, value")


class CommandResult(BaseModel):
    outcome: Literal["applied", "rejected", "unrealisable", "not-kept", "failed",
                     "store-unreadable"]
    revision: int = Field(description="the current revision after the command")
    changes: list[str]
    warnings: list[str]
    exit_code: int = Field(description="what `vragent` exits with for the same command")
    completed: bool = Field(description="false: stopped by the error before any change; "
                                        "true: ran to its end (a batch's bags before a "
                                        "rejected one were applied)")
    error: ErrorDetail | None = None


class RevisionInfo(BaseModel):
    revision: int
    time: float
    cause: str
    documents: dict[str, str] = Field(description="bag type -> digest of its stored document")


class RouterState(BaseModel):
    status: str
    status_line: str = Field(description="what CloudStack's router check reads")
    previous: str
    since: float
    reason: str
    transitions: int
    dual_master: str
    agent_alive: bool


class Rollback(BaseModel):
    revision: int | None = Field(None, ge=1, description="default: the one before the current")


class SwitchoverRequest(BaseModel):
    timeout: float | None = Field(
        None, gt=0, le=600,
        description="seconds to wait for the peer (default: its master-down interval + 2 s)")


class SwitchoverResult(BaseModel):
    outcome: Literal["switched", "not-master", "not-redundant", "peer-did-not-take-over",
                     "busy", "no-agent"]
    message: str
    state: str | None = None
    seconds: float | None = None


class Problem(BaseModel):
    detail: str


def create_app(settings: Settings, service: CommandService, metrics: Metrics,
               token: Callable[[], str | None] | None,
               switchover: Callable[[float | None], dict[str, Any]] | None = None) -> FastAPI:
    """``token`` None: the unix socket's app (no token); otherwise the TCP
    app, which answers only requests bearing what ``token()`` returns (and
    nothing at all while it returns None). ``switchover``: the resident
    agent's (none in a process of its own)."""

    async def authenticated(request: Request) -> None:
        if token is None:
            return
        expected = token()
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        ok = expected is not None and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), expected.encode())
        if not ok:
            raise HTTPException(401, "a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="vragent router API", version=API_VERSION, docs_url=None,
                  redoc_url=None, openapi_url=None, dependencies=[Depends(authenticated)],
                  responses={400: {"model": Problem}, 401: {"model": Problem},
                             422: {"model": CommandResult}})
    store = Store(settings)

    @app.exception_handler(EmptyBody)
    async def empty(request: Request, exc: EmptyBody) -> JSONResponse:
        result = Result("apply", store.current_rev(), completed=False, error=BagError(
            "", ["the request has no body: send a bag, a JSON list of bags or a batch"]))
        return JSONResponse(result.to_json(), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A request the API itself cannot read (a query parameter, a rollback's
        # body) is rejected like a bag: the same result, field by field.
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')} "
                    f"(got {escape(str(e.get('input')), 60)})" for e in exc.errors()]
        result = Result("request", store.current_rev(), completed=False,
                        error=BagError("request", problems))
        return JSONResponse(result.to_json(), status_code=422)

    async def queued(job: Job) -> JSONResponse:
        result: Result = await asyncio.wrap_future(service.submit(job))
        return JSONResponse(result.to_json(), status_code=result.http_status)

    results: dict[int | str, dict[str, Any]] = {
        200: {"model": CommandResult, "description": "applied (or nothing to change)"},
        404: {"model": CommandResult, "description": "no such revision is kept (rollback)"},
        409: {"model": CommandResult, "description": "valid, but not realisable on this router"},
        413: {"model": Problem, "description": "body over the size limit"},
        422: {"model": CommandResult, "description": "rejected: nothing was changed by it"},
        500: {"model": CommandResult, "description": "a system command failed; the previous "
                                                     "revision was restored"},
    }

    @app.post("/v1/apply", responses=results, response_model=CommandResult,
              summary="Apply a bag, a JSON list of bags, or a CloudStack aggregated batch",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"oneOf": [
                      {"type": "object"}, {"type": "array", "items": {"type": "object"}}]}},
                  "text/plain": {"schema": {"type": "string"}}}}})
    async def apply(request: Request, dry_run: bool = False,
                    source: list[str] = SOURCES) -> JSONResponse:
        """Bags are applied in order, as one command; in a batch, those before a
        rejected one stay applied (as CloudStack's batches are). ``source``
        names the body in messages; repeated, it names a list's bags in turn."""
        body = await _nonempty(request)
        names = [_name(s) for s in source]
        return await queued(service.apply([(names[0], body)], dry_run=dry_run,
                                          names=names if len(names) > 1 else None))

    for bag_type in sorted(BAG_MODELS):
        _bag_route(app, bag_type, service, queued, results)

    @app.post("/v1/reconcile", responses=results, response_model=CommandResult)
    async def reconcile() -> JSONResponse:
        """Re-apply the stored configuration."""
        return await queued(service.reconcile())

    @app.post("/v1/boot", responses=results, response_model=CommandResult)
    async def boot() -> JSONResponse:
        """Boot parameters (cmd_line.json) into the store, then the whole
        configuration onto the box, as at boot."""
        return await queued(service.boot())

    if token is None:
        @app.post("/v1/local/apply", include_in_schema=False)
        async def apply_files(request: Request, dry_run: bool = False) -> JSONResponse:
            """The CLI's ``apply FILE...``: several files as one command, each named
            in messages as the in-process command names it. Body: a JSON line
            [[name, length], ...], then each file's bytes after a newline."""
            body = await _body(request, limit=MAX_FILE_BYTES * 4)
            return await queued(service.apply(_split_files(body), dry_run=dry_run))

    @app.post("/v1/rollback", responses=results, response_model=CommandResult)
    async def rollback(target: Rollback) -> JSONResponse:
        """Make an earlier revision current again (as a new revision) and apply it."""
        return await queued(service.rollback(target.revision))

    @app.post("/v1/switchover", response_model=SwitchoverResult,
              responses={409: {"model": SwitchoverResult}, 503: {"model": SwitchoverResult}})
    def switch(request: SwitchoverRequest | None = None) -> JSONResponse:
        """Hand mastership to the peer on purpose, for maintenance: this
        router's adverts are silenced and its priority lowered until the peer
        is master, so no packet is lost and every connection is kept. 200 once
        this router is backup; 409 when it is not master, not redundant, or
        the peer did not take over (this router then stays master)."""
        if switchover is None:
            body = {"outcome": "no-agent", "message": "only the resident agent switches over"}
            return JSONResponse(body, status_code=503)
        result = switchover(request.timeout if request else None)
        return JSONResponse(result, status_code=200 if result["outcome"] == "switched" else 409)

    @app.get("/v1/config", responses={404: {"model": Problem}})
    def config(revision: int | None = Query(None, ge=1)) -> dict[str, Any]:
        """The stored configuration, every secret redacted."""
        return redact(_load(store, revision))

    @app.get("/v1/config/{bag_type}", responses={404: {"model": Problem}})
    def config_type(bag_type: Literal[tuple(sorted(BAG_MODELS))],  # type: ignore[valid-type]
                    revision: int | None = Query(None, ge=1)) -> dict[str, Any]:
        """One type's stored document, secrets redacted ({} when none is stored)."""
        docs = redact(_load(store, revision))
        return dict(docs.get(bag_type, {}))

    @app.get("/v1/revisions")
    def revisions() -> list[RevisionInfo]:
        """Kept revisions, oldest first."""
        return [RevisionInfo(revision=r.rev, time=r.time, cause=r.cause, documents=r.docs)
                for r in store.history()]

    @app.get("/v1/state")
    def state() -> RouterState:
        """This router's pair state (PRIMARY, BACKUP, FAULT or UNKNOWN)."""
        st = HaState.load(settings.ha_state)
        alive = agent_alive(settings.agent_pid)
        return RouterState(status=st.status, previous=st.previous, since=st.since,
                           reason=st.reason, transitions=st.transitions,
                           dual_master=st.dual_master, agent_alive=alive,
                           status_line=status_line(settings.ha_state, settings.agent_pid))

    @app.get("/v1/render/{subsystem}", responses=TEXT)
    async def render(subsystem: Literal[SUBSYSTEMS]) -> Response:  # type: ignore[valid-type]
        """What the stored configuration renders to (secrets included: root's view)."""
        result = await asyncio.wrap_future(service.submit(service.render(subsystem)))
        if result.error is not None:
            raise HTTPException(result.http_status, str(result.error))
        return PlainTextResponse(result.text)

    @app.get("/v1/health")
    def health_checks() -> dict[str, Any]:
        """The health checks' last results, CloudStack's format
        ({"basic": {check: {success, lastUpdate, lastRunDuration, message}},
        "advanced": {...}, "failing": [...]}); run at the intervals the
        monitorservice bag sets."""
        return health_results.results(settings)

    @app.post("/v1/health/{kind}")
    def run_health_checks(kind: Literal["basic", "advanced"]) -> dict[str, Any]:
        """Run one kind of checks now (getRouterMonitorResults.sh true); their results."""
        from ..features.monitor import runner

        return runner.run(settings, kind)

    @app.get("/metrics", responses=TEXT)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return description(app)

    return app


def _bag_route(app: FastAPI, bag_type: str, service: CommandService,
               queued: Callable[[Job], Awaitable[JSONResponse]],
               results: dict[int | str, dict[str, Any]]) -> None:
    async def submit(request: Request, dry_run: bool = False) -> JSONResponse:
        body = await _nonempty(request)
        return await queued(service.apply([(f"{bag_type}.json", body)], dry_run=dry_run,
                                          bag_type=bag_type))

    submit.__doc__ = (f"Apply one `{bag_type}` bag, exactly as CloudStack sends it "
                      f"(its `type` may be left out).")
    app.post(f"/v1/bags/{bag_type}", responses=results, response_model=CommandResult,
             name=f"apply_{bag_type}", summary=f"Apply a {bag_type} bag",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {
                     "$ref": f"#/components/schemas/{BAG_MODELS[bag_type].__name__}"}}}}},
             )(submit)


def description(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description, with the bag models' schemas as components."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             description=__doc__)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in BAG_MODELS.values():
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(js.pop("$defs", {}))
            # Each bag's own endpoint fills in its type when it is left out.
            if "type" in js.get("required", ()):
                js["required"] = [f for f in js["required"] if f != "type"]
            components[model.__name__] = js
        schema["components"]["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "the router's api_token boot parameter"}}
        schema["security"] = [{"token": []}]
        app.openapi_schema = schema
    return app.openapi_schema


async def _body(request: Request, limit: int = MAX_FILE_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body over the limit of {limit} bytes")

    async def read() -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(read(), BODY_DEADLINE)
    except TimeoutError:
        raise HTTPException(408, f"body not received within {BODY_DEADLINE:.0f} s") from None


async def _nonempty(request: Request) -> bytes:
    body = await _body(request)
    if not body.strip():
        raise EmptyBody()
    return body


class EmptyBody(Exception):
    """A command without a bag: rejected like a bad bag (vragent apply needs a file too)."""


def _split_files(body: bytes) -> list[tuple[str, bytes]]:
    header, _, rest = body.partition(b"\n")
    try:
        index = json.loads(header)
        files = []
        offset = 0
        for name, length in index:
            if not isinstance(length, int) or length < 0:
                raise ValueError("bad length")
            files.append((_name(str(name)), rest[offset:offset + length]))
            offset += length + 1
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, f"malformed file list: {exc}") from None
    return files


def _name(source: str) -> str:
    """A client-chosen name for messages: printable, short, no path."""
    cleaned = "".join(c for c in source.rsplit("/", 1)[-1] if c.isprintable())[:80]
    return cleaned or "request"


def _load(store: Store, revision: int | None) -> dict[str, Any]:
    try:
        return store.load(revision) if revision is None else store.load_kept(revision)
    except RevisionNotKept as exc:
        raise HTTPException(404, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(500, str(exc)) from None
    except VragentError as exc:
        raise HTTPException(500, str(exc)) from None
