"""The floor page: a Starlette app with server-rendered pages, served by uvicorn.

Pages: log in, upload a batch (files or a folder) and follow its per-image progress,
the batch's results (per image: count, particles, agglomerates, imperfections
removed, quality, uncertainty, a zoomable overlay; for the batch: CSD, d10/d50/d90,
agglomeration %, pass/fail against the specification), the history with control
charts, CSV exports, and an admin page (accounts, adopted tools, specification)
that operators cannot open. Every form carries the session's CSRF token; the
session cookie is HttpOnly and SameSite=Strict; pages load nothing from elsewhere.

Examples
--------
>>> from workbench.floor.config import load_floor_config
>>> app = create_app(load_floor_config("datasites/floor/factory-a.toml"))  # doctest: +SKIP
>>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8091)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from workbench.errors import WorkbenchError
from workbench.floor import accounts, history
from workbench.floor.charts import control_chart_svg, csd_svg
from workbench.floor.config import FloorConfig
from workbench.floor.runner import BatchRunner, ImageJob
from workbench.floor.spc import control_limits
from workbench.remote.tools import ToolManifest, adopted_tools, verify_tool

HERE = Path(__file__).parent
LOGIN_COOKIE = "floor_login"
_BATCH_NAME = re.compile(r"^[\w .:#/+-]{1,80}$")
_UNSAFE = re.compile(r"[^\w.+-]")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(config: FloorConfig, runner: BatchRunner | None = None) -> Starlette:
    """The floor application of one factory.

    Parameters
    ----------
    config : FloorConfig
        The factory's floor config.
    runner : BatchRunner, optional
        Counting pool; one with ``config.workers`` processes is started with the app
        (and stopped with it) when not given.
    """
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    cookie = f"floor_session_{config.factory}"
    database = config.database

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        own = runner is None
        app.state.runner = runner or BatchRunner(config.workers)
        yield
        if own:
            await run_in_threadpool(app.state.runner.close)

    def page(request: Request, name: str, status: int = 200, **context) -> Response:
        context.update(factory=config.factory, session=getattr(request.state, "session", None))
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def require(request: Request, admin: bool = False) -> accounts.Session:
        session = accounts.find_session(database, request.cookies.get(cookie))
        if session is None:
            raise HTTPException(303, headers={"Location": "/login"})
        request.state.session = session
        if admin and not session.user.is_admin:
            raise HTTPException(403, "Operators cannot open the admin pages.")
        return session

    async def form_checked(request: Request, session: accounts.Session, **limits):
        form = await request.form(**limits)
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            raise HTTPException(403, "This form has expired; reload the page and try again.")
        return form

    def tools() -> dict[str, ToolManifest]:
        return {key: manifest for key, (manifest, _) in adopted_tools(config.state_dir).items()}

    def default_tool(available: dict[str, ToolManifest]) -> str | None:
        named = [k for k, m in available.items() if m.name == config.default_tool]
        named = named or list(available)
        return max(named, key=lambda k: [int(p) for p in available[k].version.split(".")],
                   default=None)

    # --- login ------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        response = page(request, "login.html", nonce=nonce)
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict")
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        nonce = str(form.get("nonce", ""))
        if not nonce or not hmac.compare_digest(nonce, request.cookies.get(LOGIN_COOKIE, "")):
            raise HTTPException(403, "This form has expired; reload the page and try again.")
        user = await run_in_threadpool(accounts.check_password, database,
                                       str(form.get("user", "")).strip(),
                                       str(form.get("password", "")))
        if user is None:
            fresh = secrets.token_urlsafe(16)
            response = page(request, "login.html", 401, nonce=fresh,
                            error="Wrong user name or password.")
            response.set_cookie(LOGIN_COOKIE, fresh, max_age=900, httponly=True,
                                samesite="strict")
            return response
        token, _ = accounts.start_session(database, user, config.session_minutes)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(cookie, token, max_age=60 * config.session_minutes, httponly=True,
                            samesite="strict")
        response.delete_cookie(LOGIN_COOKIE)
        return response

    async def logout(request: Request) -> Response:
        session = require(request)
        await form_checked(request, session)
        accounts.end_session(database, request.cookies.get(cookie))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(cookie)
        return response

    # --- upload and results -----------------------------------------------------------

    def home(request: Request, status: int = 200, errors: list[str] | None = None,
             batch_name: str = "") -> Response:
        available = tools()
        recent = history.recent_batches(database, config.spec, last=8)[::-1]
        return page(request, "home.html", status, tools=available,
                    chosen=default_tool(available), errors=errors or [], batch_name=batch_name,
                    recent=recent, config=config)

    async def index(request: Request) -> Response:
        require(request)
        return await run_in_threadpool(home, request)

    async def upload(request: Request) -> Response:
        session = require(request)
        limit = config.max_images * config.max_image_mb * 2**20 + 2**20
        if int(request.headers.get("content-length") or 0) > limit:
            raise HTTPException(413, f"This upload is larger than a batch may be "
                                     f"({config.max_images} images of at most "
                                     f"{config.max_image_mb:g} MB each).")
        form = await form_checked(request, session, max_files=config.max_images + 1,
                                  max_fields=20)
        name = str(form.get("batch", "")).strip()
        files = [f for f in form.getlist("images") if isinstance(f, UploadFile) and f.filename]
        available = tools()
        key = str(form.get("tool", ""))
        problems = []
        if not _BATCH_NAME.match(name):
            problems.append("Give the batch a name (up to 80 letters, digits, spaces or "
                            ". : # / + - _).")
        if not files:
            problems.append("Choose at least one image (or a folder).")
        if len(files) > config.max_images:
            problems.append(f"A batch holds at most {config.max_images} images; "
                            f"{len(files)} were chosen.")
        if key not in available:
            problems.append("Choose one of the tools this factory adopted.")
        else:
            try:
                await run_in_threadpool(verify_tool, available[key])
            except WorkbenchError as refused:
                problems.append(f"{refused}. Ask the factory admin to adopt the tool again.")
        if problems:
            return await run_in_threadpool(home, request, 400, problems, name)
        names = [_safe_name(f.filename) for f in files]
        errors = {
            index: f"{names[index]}: {f.size / 2**20:.1f} MB is larger than the "
                   f"{config.max_image_mb:g} MB this floor accepts for one image"
            for index, f in enumerate(files) if (f.size or 0) > config.max_image_mb * 2**20
        }
        if len(errors) == len(files):
            return await run_in_threadpool(home, request, 400, list(errors.values()), name)
        manifest = available[key]
        batch = history.create_batch(database, name, session.user.name,
                                     (manifest.name, manifest.version, manifest.tool_hash),
                                     names, errors)
        folder = config.floor_dir / "batches" / str(batch)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        jobs = []
        for index, upload_file in enumerate(files):
            if index in errors:
                continue
            target = folder / f"{index}-{names[index]}"
            await run_in_threadpool(_save, upload_file, target)
            jobs.append(ImageJob(database, batch, index, target,
                                 folder / f"{index}.overlay.jpg", manifest.to_dict(),
                                 config.camera))
        request.app.state.runner.submit(jobs)
        return RedirectResponse(f"/batches/{batch}", status_code=303)

    def batch_or_404(batch: int) -> history.BatchSummary:
        try:
            return history.summarize(database, batch, config.spec)
        except KeyError:
            raise HTTPException(404, f"There is no batch {batch} on this floor.") from None

    def batch_page(request: Request) -> Response:
        require(request)
        summary = batch_or_404(request.path_params["batch"])
        rows = history.image_rows(database, summary.id)
        return page(request, "batch.html", batch=summary, rows=rows,
                    csd=csd_svg(summary.diameters_um, summary.csd_um), spec=config.spec)

    def progress(request: Request) -> Response:
        require(request)
        summary = batch_or_404(request.path_params["batch"])
        rows = history.image_rows(database, summary.id)
        return JSONResponse({
            "status": summary.status, "images": summary.images, "done": summary.done,
            "failed": summary.failed,
            "rows": [{"idx": r["idx"], "status": r["status"], "message": r["message"],
                      "count": r["count"]} for r in rows],
        }, headers={"Cache-Control": "no-store"})

    def image_row(request: Request) -> tuple[history.BatchSummary, dict]:
        require(request)
        summary = batch_or_404(request.path_params["batch"])
        rows = {r["idx"]: r for r in history.image_rows(database, summary.id)}
        index = request.path_params["index"]
        if index not in rows:
            raise HTTPException(404, f"Batch {summary.name} has no image {index}.")
        return summary, rows[index]

    def image_page(request: Request) -> Response:
        summary, row = image_row(request)
        return page(request, "image.html", batch=summary, row=row)

    def overlay(request: Request) -> Response:
        summary, row = image_row(request)
        path = config.floor_dir / "batches" / str(summary.id) / f"{row['idx']}.overlay.jpg"
        if row["status"] != "done" or not path.is_file():
            raise HTTPException(404, f"No overlay for {row['image']} (yet).")
        return FileResponse(path, media_type="image/jpeg", headers=SECURITY_HEADERS)

    def batch_csv(request: Request) -> Response:
        require(request)
        summary = batch_or_404(request.path_params["batch"])
        rows = history.image_rows(database, summary.id)
        return _csv(history.to_csv(rows, history.IMAGE_COLUMNS), f"batch-{summary.id}.csv")

    # --- history and admin ------------------------------------------------------------

    def _last(request: Request) -> int:
        try:
            return min(max(int(request.query_params.get("last", 30)), 2), 500)
        except ValueError:
            return 30

    def history_page(request: Request) -> Response:
        require(request)
        last = _last(request)
        batches = [b for b in history.recent_batches(database, config.spec, last) if b.done]
        labels = [b.name for b in batches]
        charts = []
        for title, unit, values in (
            ("Mean count per image (batch)", "crystals", [b.mean_count for b in batches]),
            ("d50 of the batch", "µm", [b.csd_um["d50"] for b in batches]),
            ("Agglomeration", "%", [b.agglomeration_pct for b in batches]),
        ):
            limits = control_limits(values)
            charts.append((control_chart_svg(labels, values, limits, title, unit), limits))
        alarms = {i for _, limits in charts[:2] for i in limits.out_of_control}
        return page(request, "history.html", batches=batches[::-1], charts=charts,
                    alarms={batches[i].id for i in alarms}, last=last, spec=config.spec)

    def history_csv(request: Request) -> Response:
        require(request)
        batches = history.recent_batches(database, config.spec, _last(request))
        return _csv(history.to_csv([b.to_row() for b in batches], history.BATCH_COLUMNS),
                    f"{config.factory}-history.csv")

    def admin(request: Request) -> Response:
        require(request, admin=True)
        rows = []
        for key, (manifest, record) in adopted_tools(config.state_dir).items():
            try:
                verify_tool(manifest)
                state = "files match the adopted hashes"
            except WorkbenchError as refused:
                state = str(refused)
            rows.append({"key": key, "manifest": manifest, "record": record, "state": state})
        return page(request, "admin.html", users=accounts.list_users(database), tools=rows,
                    config=config)

    def health(request: Request) -> Response:
        return JSONResponse({"factory": config.factory, "status": "ok"})

    async def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 303:
            return RedirectResponse(error.headers["Location"], status_code=303)
        return page(request, "error.html", error.status_code, message=error.detail)

    routes = [
        Route("/health", health),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", index),
        Route("/batches", upload, methods=["POST"]),
        Route("/batches/{batch:int}", batch_page),
        Route("/batches/{batch:int}/progress", progress),
        Route("/batches/{batch:int}/results.csv", batch_csv),
        Route("/batches/{batch:int}/images/{index:int}", image_page),
        Route("/batches/{batch:int}/images/{index:int}/overlay.jpg", overlay),
        Route("/history", history_page),
        Route("/history.csv", history_csv),
        Route("/admin", admin),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error})


def _safe_name(filename: str) -> str:
    """The file's own name, with anything but letters, digits, ``. + - _`` replaced.

    Examples
    --------
    >>> _safe_name("../line 3/frame 01.png")
    'frame_01.png'
    """
    return _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name)[-120:] or "image"


def _save(upload_file: UploadFile, target: Path) -> None:
    upload_file.file.seek(0)
    with open(target, "wb") as out:
        while block := upload_file.file.read(1 << 20):
            out.write(block)


def _csv(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={**SECURITY_HEADERS,
                             "Content-Disposition": f'attachment; filename="{filename}"'})
