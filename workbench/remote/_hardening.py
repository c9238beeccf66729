"""Four wraps that close PySyft 0.9.5 security gaps on a factory datasite.

The launcher calls :func:`apply` in its own process before ``sy.orchestra.launch``
forks the server child (and the server forks its job consumers), so every process
that answers researchers runs the wrapped methods. Each wrap keeps syft's own
behaviour and only adds a refusal:

1. Run limits (upstream #9391): ``UserCodeService.is_execution_allowed`` calls
   ``output_policy.is_valid()`` but ignores a False answer, so a single-use
   function runs again and again. The wrap turns False into "not valid"; syft then
   hands back the stored output instead of running the code again.
2. Private print output: ``print()`` inside a job is appended to the job's log, which
   the researcher reads with ``job.logs()``. The wrap of ``LogService.get`` /
   ``get_all`` withholds stdout and stderr from everyone but the admin.
3. Result cap: nothing on the admin side limits what a result holds (a researcher's
   own output policy can allow anything). The wrap of ``execute_byte_code`` (as
   imported by the action service) checks every non-admin run's result against the
   factory's output rule and turns a breaking result into an error that names the
   rule, unless the admin recorded an override on the request (``OVERRIDE_TAG``).
4. Job queue on every interface: the ZMQ producer binds ``tcp://*:<port>``; anything
   that reaches the machine could register as a worker and receive queued jobs, which
   carry the server's signing key. The wrap binds it to loopback, where the in-memory
   consumers connect.

Approved code still runs as plain ``exec`` in the server process: the review step is
the gate, not a sandbox.
"""

from __future__ import annotations

import functools

import syft.service.action.action_service as action_service
from syft.service.code.user_code_service import IsExecutionAllowedEnum, UserCodeService
from syft.service.log.log_service import LogService
from syft.service.queue.zmq_producer import ZMQProducer
from syft.service.user.user_roles import ServiceRole

from workbench.remote.config import OutputRule
from workbench.remote.output_rule import OVERRIDE_TAG, output_rule_violation

WITHHELD = "[withheld: output of runs on private data is shown to the factory admin only]\n"


def apply(rule: OutputRule, factory: str) -> None:
    """Install the four wraps in this process (idempotent: a second call changes nothing).

    Parameters
    ----------
    rule : OutputRule
        Limits on results released to researchers.
    factory : str
        Datasite name, used in refusal messages.
    """
    if getattr(UserCodeService.is_execution_allowed, "_workbench_wrap", False):
        return
    UserCodeService.is_execution_allowed = _mark(
        _enforce_run_limits(UserCodeService.is_execution_allowed)
    )
    LogService.get = _mark(_withhold_log(LogService.get))
    LogService.get_all = _mark(_withhold_logs(LogService.get_all))
    action_service.execute_byte_code = _mark(
        _cap_results(action_service.execute_byte_code, rule, factory)
    )
    ZMQProducer.bind = _mark(_bind_to_loopback(ZMQProducer.bind))


def _mark(function):
    function._workbench_wrap = True
    return function


# 1. Run limits ---------------------------------------------------------------------
def _enforce_run_limits(original):
    @functools.wraps(original)
    def is_execution_allowed(self, code, context, output_policy):
        verdict = original(self, code, context, output_policy)
        if verdict is IsExecutionAllowedEnum.ALLOWED and not output_policy.is_valid(context):
            return IsExecutionAllowedEnum.INVALID_OUTPUT_POLICY
        return verdict

    return is_execution_allowed


# 2. Logs of private runs -----------------------------------------------------------
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


# 3. Result cap ---------------------------------------------------------------------
def _override_recorded(code_item, context) -> bool:
    server = context.server
    requests = server.services.request.stash.get_by_usercode_id(
        server.verify_key, code_item.id
    ).unwrap()
    return any(OVERRIDE_TAG in request.tags for request in requests)


def _cap_results(original, rule: OutputRule, factory: str):
    @functools.wraps(original)
    def execute_byte_code(code_item, kwargs, context):
        output = original(code_item, kwargs, context)
        if output.errored or _is_admin(context):
            return output
        broken = output_rule_violation(output.result, rule)
        if broken and not _override_recorded(code_item, context):
            output.result = None
            output.errored = True
            output.safe_error_message = (
                f"result of {code_item.service_func_name} refused by {factory}'s output "
                f"rule: {broken}"
            )
        return output

    return execute_byte_code


# 4. Job queue on loopback -----------------------------------------------------------
def _bind_to_loopback(original):
    @functools.wraps(original)
    def bind(self, endpoint: str) -> None:
        original(self, endpoint.replace("tcp://*:", "tcp://127.0.0.1:"))

    return bind
