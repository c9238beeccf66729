"""The datasite's security patches on PySyft 0.9.5 (installed through ``_patches``).

The launcher installs these in its own process before ``sy.orchestra.launch`` forks
the server child (and the server its job consumers), so every process that answers
researchers runs them:

1. Sandboxed execution. ``execute_byte_code`` (as the action service calls it) never
   ``exec``\\ s researcher code in the server: it checks the request (the code is the
   code the admin approved, by hash; ``min_images``), runs the function in a fresh
   bubblewrap sandbox (:mod:`workbench.sandbox`), checks the result against the
   factory's output rule, and then either returns it (``release = "auto"``) or holds
   it at the factory until the admin releases it (``release = "review"``, see
   :mod:`workbench.remote.held`). Files the run left in its keep folder are stored at
   the factory (:mod:`workbench.remote.kept`) and never returned. Progress is set by
   the datasite in coarse stages. syft's second run, on the mock data, is skipped:
   its value is never used.
   Each run's sandbox is started before the run, with the counting modules imported
   (:class:`workbench.sandbox.SandboxPool`; the server starts the first one as it
   comes up): a run skips 0.5-0.7 s of start, and still gets a sandbox of its own.
2. Which twin a run sees. syft calls ``filter_twin_kwargs`` with ``PRIVATE`` then
   ``MOCK`` right before each of its two runs; the wrap records the mode for (1).
3. Run limits (upstream #9391): ``UserCodeService.is_execution_allowed`` ignores a
   False ``output_policy.is_valid()``, so a single-use function runs again and again.
4. Private print output: ``LogService.get``/``get_all`` withhold stdout and stderr
   of runs from everyone but the admin.
5. Guests: syft answers an anonymous guest's calls (dataset lists, mocks, metadata).
   Every API call from a guest is refused.
6. Job queue on every interface: the ZMQ producer binds ``tcp://*``; queued jobs
   carry the server's signing key. It is bound to loopback.
8. Researcher-written policies: syft lets a request bring its own input or output
   policy class (``sy.CustomOutputPolicy``), whose code runs in the server process,
   outside the sandbox, after the function. Such requests are refused at submission,
   and a stored one is never loaded.
7. Audit: every code request submitted is written to the factory's hash-chained
   audit log (:mod:`workbench.privacy.audit`); (1) logs each run, refusal, hold,
   release, delivery and kept files, with the size and a hash of what left (or
   stayed), never the value.

Pooled requests (:mod:`workbench.remote.pooling`) go through (1) too: the datasite
sums the function's per-image rows, adds its noise and masks, and releases that.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

import syft.service.action.action_service as action_service
from syft.server.server import Server
from syft.service.action.action_object import TwinMode
from syft.service.code.user_code import UserCode, UserCodeExecutionOutput, get_code_hash
from syft.service.code.user_code_service import IsExecutionAllowedEnum, UserCodeService
from syft.service.log.log_service import LogService
from syft.service.policy.policy import SubmitUserPolicy, UserPolicy
from syft.service.queue.zmq_producer import ZMQProducer
from syft.service.request.request_service import RequestService
from syft.service.user.user_roles import ServiceRole
from syft.types.errors import SyftException

from workbench.errors import WorkbenchError
from workbench.privacy import audit
from workbench.remote import held as held_store
from workbench.remote import kept as kept_store
from workbench.remote import pooling
from workbench.remote._patches import Patch
from workbench.remote._syft_calls import code_inputs
from workbench.remote.config import DatasiteConfig
from workbench.remote.output_rule import OVERRIDE_TAG, check_output, too_few_images
from workbench.sandbox import SandboxOutcome, SandboxPool

WITHHELD = "[withheld: output of runs on private data is shown to the factory admin only]\n"
# What the shipped counting functions import: a waiting sandbox has imported them
# before its run is handed over (0.3-0.4 s of a run's start on 2 cores).
SANDBOX_PRELOAD = ("workbench.imaging.pipeline", "workbench.imaging.aggregate")
GUEST_REFUSED = "this datasite shares nothing with guests: log in with an account from its admin"
_twin_mode: contextvars.ContextVar[TwinMode | None] = contextvars.ContextVar(
    "workbench_twin_mode", default=None
)


def patches(config: DatasiteConfig) -> list[Patch]:
    """The security patches for the factory of `config`."""
    sandboxes = SandboxPool(config.sandbox, hidden=(config.state_dir,), preload=SANDBOX_PRELOAD)
    return [
        Patch(
            action_service,
            "execute_byte_code",
            lambda original: _sandboxed_execution(config, sandboxes),
            "approved code ran as plain exec inside the syft server process",
        ),
        Patch(
            Server,
            "init_queue_manager",
            lambda original: _sandbox_waiting_first(original, sandboxes),
            "(with 1) the first run after a start would pay the sandbox's start",
        ),
        Patch(
            action_service,
            "filter_twin_kwargs",
            _record_twin_mode,
            "the sandboxed run must know whether it sees private or mock data",
        ),
        Patch(
            UserCodeService,
            "is_execution_allowed",
            _enforce_run_limits,
            "run limits of output policies are not enforced (upstream #9391)",
        ),
        Patch(LogService, "get", _withhold_log, "print() of private runs reached researchers"),
        Patch(LogService, "get_all", _withhold_logs, "print() of private runs reached researchers"),
        Patch(
            Server,
            "handle_api_call_with_unsigned_result",
            _refuse_guests,
            "anonymous guests could list datasets, mocks and metadata",
        ),
        Patch(
            ZMQProducer,
            "bind",
            _bind_to_loopback,
            "the job queue listened on every interface (jobs carry the signing key)",
        ),
        Patch(
            UserCodeService,
            "_submit",
            _refuse_policy_code_at_submission,
            "a request's own policy class ran its code in the server process, unsandboxed",
        ),
        *[
            Patch(
                UserCode,
                name,
                _refuse_policy_code,
                "a stored request's own policy class would run in the server process",
            )
            for name in ("_get_input_policy", "_get_output_policy")
        ],
        *[
            Patch(
                RequestService,
                name,
                functools.partial(build, config=config),
                "nothing recorded for the factory what was asked, decided and released",
            )
            for name, build in (
                ("submit", _audit_requests),
                ("apply", functools.partial(_audit_decision, decision="approved")),
                ("undo", functools.partial(_audit_decision, decision="denied")),
                ("set_tags", _audit_tags),
            )
        ],
    ]


# 1. Sandboxed execution --------------------------------------------------------------
def _sandboxed_execution(config: DatasiteConfig, sandboxes: SandboxPool):
    def execute_byte_code(code_item, kwargs: dict[str, Any], context) -> UserCodeExecutionOutput:
        if _twin_mode.get() is TwinMode.MOCK:
            return _output(code_item, None)  # syft's mock run: its value is never used
        try:
            return _run_checked(config, sandboxes, code_item, kwargs, context)
        except _RefusedError as refused:
            _log(context, stderr=refused.detail or str(refused))
            _audit(config, "refusal", code_item, context, reason=str(refused))
            return _output(code_item, None, error=str(refused))

    return execute_byte_code


class _RefusedError(Exception):
    """A run that ends without a result: the message is what the researcher sees."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail  # for the admin's log only


def _sandbox_waiting_first(original, sandboxes: SandboxPool):
    """Wrap ``Server.init_queue_manager``: the server starts a sandbox for its first run."""

    @functools.wraps(original)
    def init_queue_manager(self, queue_config):
        if not self.is_subprocess:  # the server itself, not a job's worker
            sandboxes.start()
        return original(self, queue_config)

    return init_queue_manager


def _run_checked(config: DatasiteConfig, sandboxes: SandboxPool, code_item, kwargs: dict, context):
    name = code_item.service_func_name
    is_admin = context.role == ServiceRole.ADMIN
    request = None if is_admin else _request_of(code_item, context)
    plan = None
    if request is not None:
        _check_approved_code(config, code_item, request)
        images = count_images(kwargs, code_inputs(code_item), _dataset_assets(context))
        broken = too_few_images(images, config.output_rule)
        if broken:
            raise _RefusedError(
                f"{name} refused by {config.name}'s rule {broken.rule}: {broken.detail}"
            )
        if config.release == "review":
            delivered = _released_value(config, code_item, request)
            if delivered is not None:
                _audit(config, "delivery", code_item, context, **_what_left(delivered[0]))
                return _output(code_item, delivered[0])
        plan = _pool_plan(config, code_item, request)
    _audit(config, "run", code_item, context)
    _progress(context, 10)
    outcome = sandboxes.run(code_item.raw_code, name, kwargs)
    _log(context, stdout=outcome.stdout, stderr=outcome.error or "")
    _progress(context, 90)
    if not outcome.ok:
        raise _RefusedError(_failure_message(config, name, outcome))
    if request is None:
        return _output(code_item, outcome.result)
    value = outcome.result
    if plan is not None:
        try:
            value = pooling.datasite_release(
                config, plan, value, str(request.requesting_user_email), str(request.id)
            )
        except WorkbenchError as error:
            raise _RefusedError(
                f"pooled answer of {name} refused by {config.name}: {error}"
            ) from None
    broken = check_output(value, config.output_rule)
    if broken and OVERRIDE_TAG not in request.tags:
        raise _RefusedError(
            f"result of {name} refused by {config.name}'s output rule {broken.rule}", broken.detail
        )
    if outcome.kept:
        try:
            kept = kept_store.keep(
                config.state_dir,
                request=str(request.id),
                function=name,
                researcher=str(request.requesting_user_email),
                files=outcome.kept,
            )
        except (OSError, WorkbenchError) as error:
            raise _RefusedError(
                f"the files {name} left could not be kept at {config.name}; its admin can "
                "read why in the job log",
                str(error),
            ) from None
        _audit(config, "kept", code_item, context, token=kept.token, files=kept.files)
    if config.release == "review":
        held = held_store.hold(
            config.state_dir,
            code_id=str(code_item.id),
            function=name,
            researcher=str(request.requesting_user_email),
            value=value,
        )
        _audit(config, "held", code_item, context, token=held.token, **_what_left(value))
        raise _RefusedError(held_store.held_message(name, config.name, held.token))
    _audit(config, "release", code_item, context, **_what_left(value))
    return _output(code_item, value)


def _pool_plan(config: DatasiteConfig, code_item, request) -> pooling.PoolPlan | None:
    """The request's pooling plan, checked before anything runs (None: not pooled)."""
    try:
        plan = pooling.plan_of(code_item.raw_code)
        if plan is not None:
            pooling.check_plan(config, plan, str(request.requesting_user_email))
        return plan
    except WorkbenchError as error:
        name = code_item.service_func_name
        raise _RefusedError(f"pooled request {name} refused by {config.name}: {error}") from None


def _what_left(value: Any) -> dict:
    """What the audit log keeps of a released value: its fields, size and hash."""
    fields = sorted(value)[:40] if isinstance(value, dict) else type(value).__name__
    return {"fields": fields, "bytes": len(str(value)), "sha256": audit.value_digest(value)}


def _audit(config: DatasiteConfig, kind: str, code_item, context, **details: Any) -> None:
    """A datasite step of one run, filed under its request (the code, for admin runs)."""
    try:
        request = str(_request_of(code_item, context).id)
    except _RefusedError:
        request = str(code_item.id)
    audit.append(
        config.state_dir,
        kind,
        actor="datasite",
        request=request,
        function=code_item.service_func_name,
        **details,
    )


def count_images(kwargs: dict[str, Any], inputs: dict[str, Any], assets: set[str]) -> int:
    """Private images a run reads: each distinct dataset asset of the factory counted once.

    Parameters
    ----------
    kwargs : dict
        The run's resolved inputs, by parameter.
    inputs : dict
        The request's inputs as submitted, by parameter: an asset's id, or a constant.
    assets : set of str
        Ids of the assets of this factory's datasets.

    Only inputs that are assets of the factory's datasets count, each once: a constant
    or an object the researcher uploaded, or the same asset passed twice, adds nothing.

    Examples
    --------
    >>> batch = {"images": [1, 2]}
    >>> count_images({"a": batch, "b": batch, "c": {"images": [0, 0, 0]}},
    ...              {"a": "id-1", "b": "id-1", "c": {"images": [0, 0, 0]}}, {"id-1"})
    2
    """
    counted: set[str] = set()
    total = 0
    for param, ref in inputs.items():
        ref = str(ref) if not isinstance(ref, dict | list) else None
        value = kwargs.get(param)
        if ref in assets and ref not in counted and isinstance(value, dict):
            counted.add(ref)
            total += len(value.get("images", [])) if isinstance(value.get("images"), list) else 0
    return total


def _dataset_assets(context) -> set[str]:
    server = context.server
    datasets = server.services.dataset.stash.get_all(server.verify_key).unwrap()
    return {str(asset.action_id) for dataset in datasets for asset in dataset.asset_list}


def _request_of(code_item, context):
    server = context.server
    requests = server.services.request.stash.get_by_usercode_id(
        server.verify_key, code_item.id
    ).unwrap()
    if not requests:
        raise _RefusedError(f"{code_item.service_func_name} has no code request on this datasite")
    return requests[0]


def _check_approved_code(config: DatasiteConfig, code_item, request) -> None:
    """The code that runs is the code the admin approved: same hash, and it matches."""
    recomputed = get_code_hash(code_item.raw_code, code_item.user_verify_key)
    approved = f"{held_store.APPROVED_CODE_TAG}{code_item.code_hash}" in request.tags
    if recomputed != code_item.code_hash or not approved:
        raise _RefusedError(
            f"{code_item.service_func_name} refused by {config.name}: this code is not the "
            "code its admin approved",
            f"stored hash {code_item.code_hash}, code hashes to {recomputed}, approved: {approved}",
        )


def _released_value(config: DatasiteConfig, code_item, request) -> tuple[Any] | None:
    """``(value,)`` if the admin released this request's held result; refuse otherwise."""
    held = held_store.pending_for_code(config.state_dir, str(code_item.id))
    if held is None:
        return None
    name = code_item.service_func_name
    if held_store.release_tag(held) in request.tags:
        held_store.mark_delivered(config.state_dir, held)
        return (held.value,)
    if f"{held_store.WITHHELD_TAG}{held.token}" in request.tags:
        reason = held_store.withheld_reason(list(request.tags)) or "no reason given"
        raise _RefusedError(f"result of {name} withheld by {config.name}'s admin: {reason}")
    raise _RefusedError(
        f"result of {name} is still {held_store.HELD_MESSAGE} by {config.name}'s admin"
    )


def _failure_message(config: DatasiteConfig, name: str, outcome: SandboxOutcome) -> str:
    if outcome.limit is not None:
        value = {
            "timeout": f"{config.sandbox.timeout_s:g} s",
            "cpu": f"{config.sandbox.cpu_s} CPU s",
            "memory": f"{config.sandbox.memory_mb} MiB",
            "processes": f"{config.sandbox.max_processes} processes",
            "file size": f"{config.sandbox.max_file_mb} MiB",
            "tmp space": f"{config.sandbox.tmp_mb} MiB",
            "output size": f"{config.sandbox.max_output_kb} KiB",
            "kept size": f"{config.sandbox.max_kept_mb} MiB",
        }.get(outcome.limit, "")
        return f"run of {name} stopped by {config.name}'s {outcome.limit} limit ({value})".replace(
            " ()", ""
        )
    if outcome.error and outcome.error.startswith("result"):
        return f"result of {name} refused by {config.name}: results are plain data only"
    # The exception's text may carry private data: the admin reads it in the job log.
    return f"{name} failed on {config.name}'s data; its admin can read the error in the job log"


def _output(code_item, result: Any, error: str | None = None) -> UserCodeExecutionOutput:
    return UserCodeExecutionOutput(
        user_code_id=code_item.id,
        stdout="",
        stderr="",
        result=result,
        errored=error is not None,
        safe_error_message=error or "",
    )


def _progress(context, percent: int) -> None:
    """Coarse progress of a job, set by the datasite (never by the function)."""
    job = getattr(context, "job", None)
    if job is None or context.server is None:
        return
    job.n_iters, job.current_iter = 100, percent
    context.server.services.job.update(context, job)


def _log(context, stdout: str = "", stderr: str = "") -> None:
    """Append to the job's log (readable by the admin only, see patch 4)."""
    job = getattr(context, "job", None)
    if job is None or context.server is None or not (stdout or stderr):
        return
    context.server.services.log.append(
        context=context, uid=job.log_id, new_str=stdout, new_err=stderr
    )


# 2. Twin mode -------------------------------------------------------------------------
def _record_twin_mode(original):
    @functools.wraps(original)
    def filter_twin_kwargs(kwargs, twin_mode, allow_python_types=False):
        _twin_mode.set(twin_mode)
        return original(kwargs, twin_mode, allow_python_types=allow_python_types)

    return filter_twin_kwargs


# 3. Run limits -------------------------------------------------------------------------
def _enforce_run_limits(original):
    @functools.wraps(original)
    def is_execution_allowed(self, code, context, output_policy):
        verdict = original(self, code, context, output_policy)
        if verdict is IsExecutionAllowedEnum.ALLOWED and not output_policy.is_valid(context):
            return IsExecutionAllowedEnum.INVALID_OUTPUT_POLICY
        return verdict

    return is_execution_allowed


# 4. Logs of private runs -----------------------------------------------------------------
def _is_admin(context) -> bool:
    return context.role == ServiceRole.ADMIN


def _redacted(log):
    log.stdout = WITHHELD
    log.stderr = ""
    return log


def _withhold_log(original):
    @functools.wraps(original)
    def get(self, context, *args, **kwargs):
        log = original(self, context, *args, **kwargs)
        return log if _is_admin(context) else _redacted(log)

    return get


def _withhold_logs(original):
    @functools.wraps(original)
    def get_all(self, context, *args, **kwargs):
        logs = original(self, context, *args, **kwargs)
        return logs if _is_admin(context) else [_redacted(log) for log in logs]

    return get_all


# 5. Guests ---------------------------------------------------------------------------------
def _refuse_guests(original):
    @functools.wraps(original)
    def handle_api_call_with_unsigned_result(self, api_call, *args, **kwargs):
        if self.get_role_for_credentials(credentials=api_call.credentials) == ServiceRole.GUEST:
            raise SyftException(public_message=GUEST_REFUSED)
        return original(self, api_call, *args, **kwargs)

    return handle_api_call_with_unsigned_result


# 7. Audit of requests and decisions -----------------------------------------------------------
def _audit_requests(original, config: DatasiteConfig):
    @functools.wraps(original)
    def submit(self, context, request, *args, **kwargs):
        created = original(self, context, request, *args, **kwargs)
        audit.append(config.state_dir, "request", actor=_actor(context), request=str(created.id))
        return created

    return submit


def _audit_decision(original, config: DatasiteConfig, decision: str):
    """``request.apply`` (approve) and ``request.undo`` (deny, with the reason)."""

    @functools.wraps(original)
    def decide(self, context, uid, *args, **kwargs):
        result = original(self, context, uid, *args, **kwargs)
        reason = {"reason": args[0]} if args else {}
        audit.append(
            config.state_dir,
            "decision",
            actor=_actor(context),
            request=str(uid),
            decision=decision,
            **reason,
        )
        return result

    return decide


_TAG_KINDS = (
    (held_store.RELEASED_TAG, "release", "token"),
    (held_store.WITHHELD_TAG, "withhold", "token"),
    (held_store.WITHHELD_REASON_TAG, "withhold", "reason"),
    (held_store.APPROVED_CODE_TAG, "decision", "approved_code"),
    (OVERRIDE_TAG, "override", "tag"),
)


def _audit_tags(original, config: DatasiteConfig):
    """Releases, withholdings, overrides and approved code hashes are request tags."""

    @functools.wraps(original)
    def set_tags(self, context, request, tags, **kwargs):
        before = set(self.stash.get_by_uid(context.credentials, request.id).unwrap().tags)
        result = original(self, context, request, tags, **kwargs)
        for tag in [tag for tag in tags if tag not in before]:
            for prefix, kind, field in _TAG_KINDS:
                if tag.startswith(prefix):
                    audit.append(
                        config.state_dir,
                        kind,
                        actor=_actor(context),
                        request=str(request.id),
                        **{field: tag[len(prefix) :]},
                    )
                    break
        return result

    return set_tags


def _actor(context) -> str:
    try:
        return str(context.server.services.user.get_current_user(context).email)
    except Exception:  # syft raises its own types for an unknown key
        return "unknown"


# 8. Researcher-written policies -------------------------------------------------------------
POLICY_REFUSED = (
    "this datasite runs only syft's own input and output policies: a request that brings "
    "its own policy class would run that code outside the sandbox"
)


def _refuse_policy_code_at_submission(original):
    @functools.wraps(original)
    def _submit(self, context, submit_code, *args, **kwargs):
        policies = (submit_code.input_policy_type, submit_code.output_policy_type)
        if any(isinstance(policy, SubmitUserPolicy | UserPolicy) for policy in policies):
            raise SyftException(public_message=POLICY_REFUSED)
        return original(self, context, submit_code, *args, **kwargs)

    return _submit


def _refuse_policy_code(original):
    @functools.wraps(original)
    def get_policy(self, *args, **kwargs):
        if any(
            isinstance(policy, UserPolicy)
            for policy in (self.input_policy_type, self.output_policy_type)
        ):
            raise SyftException(public_message=POLICY_REFUSED)
        return original(self, *args, **kwargs)

    return get_policy


# 6. Job queue on loopback ------------------------------------------------------------------
def _bind_to_loopback(original):
    @functools.wraps(original)
    def bind(self, endpoint: str) -> None:
        original(self, endpoint.replace("tcp://*:", "tcp://127.0.0.1:"))

    return bind
