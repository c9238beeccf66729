"""Pooled answers across factories: clear, secure (masked) and differentially private.

A researcher asks every factory for the same aggregate and wants only the sum. The
request carries its pooling plan as a literal at the top of the submitted code,
where each admin reads it and where it is covered by the approved code's hash::

    def crystal_rows(datasite, images_000):
        WORKBENCH_POOL = {"round": "3f2a...", "participants": ["factory-a", "factory-b"],
                          "secure": True, "epsilon": 1.0, "delta": 1e-06, "max_per_image": 500}
        ...

The function returns one row per image (:meth:`CrystalAggregate.vector` of that
image); the rows never leave the factory. The datasite (not the function) sums them,
clamping each image to ``max_per_image`` when noise is asked for, adds its OpenDP noise
(:mod:`workbench.privacy.budget`: Laplace for a factory's own answer, a Gaussian share
for a secure pooled one), masks the sum with the pairwise masks of the round
(:mod:`workbench.privacy.secure_sum`, keys of the peers from its own TOML), checks the
budget and logs the spend. What it releases is ``{"round", "factory", "mode",
"vector" | "masked", "epsilon", "delta"}`` (and ``epsilon_left``, the researcher's
remaining budget at that factory, when noise was asked for). :func:`combine` adds the
released vectors back into one :class:`~workbench.imaging.aggregate.CrystalAggregate`.

Examples
--------
>>> plan = PoolPlan("r1", ("factory-a", "factory-b"), secure=True)
>>> plan_of(pool_preamble(plan) + "x = 1\\n") == plan
True
"""

from __future__ import annotations

import ast
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.imaging.aggregate import CSD_EDGES_UM, CrystalAggregate
from workbench.privacy import audit, budget, secure_sum
from workbench.remote.config import DatasiteConfig

POOL_NAME = "WORKBENCH_POOL"
_N_COUNTS = 5  # crystals, agglomerated, particles, agglomerates, artifacts_removed


@dataclass(frozen=True)
class PoolPlan:
    """How one pooled request is answered.

    Attributes
    ----------
    round : str
        Random id of the request (masks are never reused across rounds).
    participants : tuple of str
        Every factory asked, in order.
    secure : bool
        Release masked vectors (only the sum can be read) instead of clear ones.
    epsilon : float or None
        Declared privacy loss per factory answer; None: no noise.
    delta : float
        Declared ``δ`` (pooled secure answers use Gaussian noise).
    max_per_image : float
        Most crystals one image may add (the clamp that bounds the sensitivity).
    """

    round: str
    participants: tuple[str, ...]
    secure: bool = True
    epsilon: float | None = None
    delta: float = 1e-6
    max_per_image: float = 500.0


@dataclass(frozen=True)
class PooledAnswer:
    """What a researcher learns from one pooled request.

    Attributes
    ----------
    aggregate : CrystalAggregate
        The pooled sums (noisy when ``epsilon`` was asked for).
    mode : str
        ``clear``, ``secure``, ``clear+dp`` or ``secure+dp``.
    factories : list of str
        The factories whose answers are in the sum.
    per_factory : dict
        Each factory's own released sums, in clear mode only (empty when secure).
    epsilon : float or None
        Privacy loss spent at each factory.
    """

    aggregate: CrystalAggregate
    mode: str
    factories: list[str]
    per_factory: dict[str, CrystalAggregate]
    epsilon: float | None

    def table(self) -> pd.DataFrame:
        """One row: the pooled summary (counts, means, agglomeration, d10/d50/d90)."""
        return pd.DataFrame(
            [{"pooled": " + ".join(self.factories), "mode": self.mode, **self.aggregate.summary()}]
        )


def pool_preamble(plan: PoolPlan) -> str:
    """The literal line the submitted code starts with."""
    literal = {**asdict(plan), "participants": list(plan.participants)}
    return f"{POOL_NAME} = {literal!r}\n"


def plan_of(source: str) -> PoolPlan | None:
    """The pooling plan of submitted code, or None for an ordinary request.

    Raises
    ------
    WorkbenchError
        If the code assigns the plan something that is not a plain literal plan.
    """
    if POOL_NAME not in source:
        return None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == POOL_NAME for target in node.targets
        ):
            try:
                literal = ast.literal_eval(node.value)
                return PoolPlan(**{**literal, "participants": tuple(literal["participants"])})
            except (ValueError, TypeError, KeyError):
                raise WorkbenchError(f"{POOL_NAME} must be a literal pooling plan") from None
    return None


def check_plan(config: DatasiteConfig, plan: PoolPlan, researcher: str) -> None:
    """Refuse a plan this factory cannot answer, before anything runs."""
    if config.name not in plan.participants:
        raise WorkbenchError(f"the pooling round does not name {config.name}")
    unknown = [
        name
        for name in plan.participants
        if name != config.name and name not in config.privacy.peers
    ]
    if plan.secure and unknown:
        raise WorkbenchError(
            f"{unknown[0]} is not a pooling peer of {config.name} "
            "(its key is not in [privacy.peers])"
        )
    if plan.secure and len(plan.participants) < 2:
        raise WorkbenchError("a secure pooled answer needs at least two factories")
    if plan.epsilon is not None:
        if not plan.epsilon > 0 or not 0 < plan.delta <= config.privacy.delta_budget:
            raise WorkbenchError(
                f"ε must be positive and δ at most {config.privacy.delta_budget:g} here"
            )
        if plan.max_per_image <= 0:
            raise WorkbenchError("max_per_image must be positive")
        budget.check_budget(
            config.state_dir, researcher, plan.epsilon, config.privacy.epsilon_budget
        )


def datasite_release(
    config: DatasiteConfig, plan: PoolPlan, result: Any, researcher: str, request: str
) -> dict:
    """What this factory releases for `plan`, from the function's per-image rows.

    Raises
    ------
    WorkbenchError
        If the rows are malformed, the budget is spent, or a peer is unknown.
    """
    check_plan(config, plan, researcher)
    width = len(CrystalAggregate.empty().vector())
    rows = result.get("rows") if isinstance(result, dict) else None
    if not isinstance(rows, list) or not all(
        isinstance(row, list) and len(row) == width for row in rows
    ):
        raise WorkbenchError(
            f"a pooled function returns {{'rows': [one {width}-number row per image]}}"
        )
    if plan.epsilon is not None:
        rows = [budget.clamp_image_row(row, _N_COUNTS, plan.max_per_image) for row in rows]
    total = [float(sum(column)) for column in zip(*rows, strict=True)] if rows else [0.0] * width
    mode = "secure" if plan.secure else "clear"
    if plan.epsilon is not None:
        total = _noised(total, plan)
        budget.record_spend(config.state_dir, researcher, request, plan.epsilon, plan.delta)
        spent = budget.spent(config.state_dir, researcher)
        epsilon_left = round(config.privacy.epsilon_budget - spent, 6)
        mode += "+dp"
    released: dict[str, Any] = {
        "round": plan.round,
        "factory": config.name,
        "mode": mode,
        "epsilon": plan.epsilon,
        "delta": plan.delta if plan.epsilon is not None else None,
    }
    if plan.epsilon is not None:
        released["epsilon_left"] = epsilon_left  # the researcher's own budget here
    if plan.secure:
        key = secure_sum.load_or_create_key(config.state_dir)
        public = {**config.privacy.peers, config.name: secure_sum.public_key_hex(key)}
        participants = {name: public[name] for name in plan.participants}
        released["masked"] = secure_sum.masked_vector(
            total, key, config.name, participants, plan.round
        )
    else:
        released["vector"] = [round(value, 6) for value in total]
    audit.append(
        config.state_dir,
        "pooled",
        actor=researcher,
        request=request,
        round=plan.round,
        mode=mode,
        participants=list(plan.participants),
    )
    return released


def _noised(total: list[float], plan: PoolPlan) -> list[float]:
    if plan.secure:
        sensitivity = budget.l2_sensitivity(_N_COUNTS, plan.max_per_image)
        return budget.gaussian_share(
            total,
            epsilon=plan.epsilon,
            delta=plan.delta,
            sensitivity=sensitivity,
            shares=len(plan.participants),
        )
    sensitivity = budget.l1_sensitivity(_N_COUNTS, plan.max_per_image)
    return budget.laplace_release(total, epsilon=plan.epsilon, sensitivity=sensitivity)[0]


# -- researcher side ------------------------------------------------------------------
def submit_pooled(
    clients: dict[str, Any],
    function: Callable,
    dataset: str,
    *,
    secure: bool = True,
    epsilon: float | None = None,
    delta: float = 1e-6,
    max_per_image: float = 500.0,
) -> PoolPlan:
    """Submit `function` (per-image rows, e.g. :func:`counting.crystal_rows`) for pooling.

    One code request per factory, each carrying the same plan; the admins review and
    approve them as usual. Then :func:`workbench.remote.client.start_runs`,
    ``wait_for_results`` and :func:`combine`, or all at once with :func:`pooled`.
    """
    from workbench.remote import client

    plan = PoolPlan(
        secrets.token_hex(8), tuple(sorted(clients)), secure, epsilon, delta, max_per_image
    )
    client.submit(clients, function, dataset, preamble=pool_preamble(plan))
    return plan


def combine(clients: dict[str, Any], function_name: str) -> PooledAnswer:
    """Add up the released answers of a pooled request.

    Raises
    ------
    WorkbenchError
        If a factory has no answer (the pooled sum needs every participant: a masked
        vector alone is noise), or the answers belong to different rounds.
    """
    from workbench.remote import client

    table = client.collect(clients, function_name)
    missing = [
        f"{row['factory']} ({row['error']})"
        for row in table.to_dict("records")
        if not isinstance(row.get("round"), str)
    ]
    if missing:
        raise WorkbenchError(
            "no pooled answer: every factory must release its share, and "
            + ", ".join(missing)
            + " did not"
        )
    rounds = set(table["round"])
    if len(rounds) != 1:
        raise WorkbenchError(f"the factories answered different pooling rounds: {sorted(rounds)}")
    rows = table.to_dict("records")
    mode = rows[0]["mode"]
    if mode.startswith("secure"):
        total = secure_sum.unmasked_sum([row["masked"] for row in rows])
        per_factory = {}
    else:
        per_factory = {row["factory"]: CrystalAggregate.from_vector(row["vector"]) for row in rows}
        total = [sum(column) for column in zip(*(row["vector"] for row in rows), strict=True)]
    epsilon = rows[0].get("epsilon")
    return PooledAnswer(
        CrystalAggregate.from_vector(total, CSD_EDGES_UM),
        mode,
        list(table["factory"]),
        per_factory,
        None if epsilon is None or pd.isna(epsilon) else float(epsilon),
    )


def pooled(
    clients: dict[str, Any],
    function: Callable,
    dataset: str,
    *,
    timeout: float = 600.0,
    **plan: Any,
) -> PooledAnswer:
    """Submit, wait for the admins' approvals and releases, run, and combine.

    `plan` holds :func:`submit_pooled`'s options (``secure``, ``epsilon``, ``delta``,
    ``max_per_image``); `timeout` bounds the whole wait.

    Raises
    ------
    WorkbenchError
        If an admin denies or does not decide within `timeout`, or a factory fails.
    """
    from workbench.remote import browse, client

    submit_pooled(clients, function, dataset, **plan)
    name = function.__name__
    deadline = time.monotonic() + timeout
    decided = browse.wait_for_decisions(clients, name, timeout=timeout)
    refused = decided[decided["request"] != "approved"]
    if len(refused):
        raise WorkbenchError(
            f"no pooled answer: {', '.join(refused['factory'])} did not approve "
            f"({'; '.join(refused['request'] + ' ' + refused['reason'])})"
        )
    client.start_runs(clients, name)
    client.wait_for_results(
        clients,
        name,
        timeout=max(1.0, deadline - time.monotonic()),
        release_wait=max(0.0, deadline - time.monotonic()),
    )
    return combine(clients, name)
