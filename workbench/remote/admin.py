"""Factory admin session: log in with the datasite's own password, manage accounts.

Examples
--------
>>> from workbench.remote.config import load_config
>>> session = admin_login(load_config("datasites/factory-a.toml"))  # doctest: +SKIP
>>> add_researcher(session, "ana@uni.example", "Ana")  # doctest: +SKIP
'generated password'
>>> datasite_summary(session)  # doctest: +SKIP
{'datasets': ['line-3'], 'users': 2, 'pending_requests': 0}
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet, reason, request_status
from workbench.remote.config import DatasiteConfig, OutputRule
from workbench.remote.identity import admin_password
from workbench.sandbox import SandboxLimits


@dataclass(frozen=True)
class AdminSession:
    """A factory admin's session: the syft client and the factory's own config.

    Every admin-side check (trial runs, computing on private data, releasing a value)
    takes its output rule, sandbox limits and held results from here, so what the
    admin's tools check is what the datasite enforces.

    Attributes
    ----------
    config : DatasiteConfig
        The factory, as its datasite was started.
    client : syft DatasiteClient
        Logged in as the factory admin.
    """

    config: DatasiteConfig
    client: Any

    @property
    def name(self) -> str:
        """The factory's datasite name."""
        return self.config.name

    @property
    def rule(self) -> OutputRule:
        """The factory's output rule."""
        return self.config.output_rule

    @property
    def limits(self) -> SandboxLimits:
        """The factory's sandbox limits."""
        return self.config.sandbox


def admin_login(config: DatasiteConfig) -> AdminSession:
    """Log in to the datasite of `config` as its admin (password from env or state folder).

    Raises
    ------
    WorkbenchError
        If the datasite does not answer or refuses the admin's password.
    """
    import syft as sy

    password = admin_password(config.state_dir, config.password_env)
    try:
        with quiet():
            client = sy.login(url=config.url, email=config.admin_email, password=password)
    except Exception as error:  # syft and requests raise several types here
        raise WorkbenchError(
            f"admin login to {config.name} at {config.url} failed: {reason(error)}"
        ) from None
    return AdminSession(config, client)


def add_researcher(
    session: AdminSession, email: str, name: str, password: str | None = None, institution: str = ""
) -> str:
    """Create a researcher (data scientist) account; return its password.

    Self sign-up is off on factory datasites: the admin creates every account.

    Parameters
    ----------
    session : AdminSession
    email, name : str
        The researcher's e-mail (login) and display name.
    password : str, optional
        Generated (24 URL-safe characters) when not given.
    institution : str
        Shown to the admin next to the researcher's requests.

    Raises
    ------
    WorkbenchError
        If the account exists already or syft refuses it.
    """
    password = password or secrets.token_urlsafe(18)
    try:
        with quiet():
            session.client.users.create(
                name=name,
                email=email,
                password=password,
                password_verify=password,
                institution=institution,
            )
    except Exception as error:
        raise WorkbenchError(
            f"cannot create researcher {email} on {session.name}: {reason(error)}"
        ) from None
    return password


def datasite_summary(session: AdminSession) -> dict:
    """Datasets, accounts, pending code requests and held results on the admin's datasite."""
    from workbench.remote.held import held_results

    admin = session.client
    with quiet():
        datasets = [dataset.name for dataset in admin.datasets.get_all()]
        users = len(admin.users.get_all())
        pending = sum(1 for request in admin.requests if request_status(request) == "pending")
    return {
        "datasets": datasets,
        "users": users,
        "pending_requests": pending,
        "held_results": len(held_results(session.config.state_dir)),
    }
