"""Factory admin session: log in with the datasite's own password, manage accounts.

Examples
--------
>>> from workbench.remote.config import load_config
>>> admin = admin_login(load_config("datasites/factory-a.toml"))  # doctest: +SKIP
>>> add_researcher(admin, "ana@uni.example", "Ana")  # doctest: +SKIP
'generated password'
>>> datasite_summary(admin)  # doctest: +SKIP
{'datasets': ['line-3'], 'users': 2, 'pending_requests': 0}
"""

from __future__ import annotations

import secrets
from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet, reason, status_name
from workbench.remote.config import DatasiteConfig
from workbench.remote.identity import admin_password


def admin_login(config: DatasiteConfig) -> Any:
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
            return sy.login(url=config.url, email=config.admin_email, password=password)
    except Exception as error:  # syft and requests raise several types here
        raise WorkbenchError(
            f"admin login to {config.name} at {config.url} failed: {reason(error)}"
        ) from None


def add_researcher(
    admin: Any, email: str, name: str, password: str | None = None, institution: str = ""
) -> str:
    """Create a researcher (data scientist) account; return its password.

    Self sign-up is off on factory datasites: the admin creates every account.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin.
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
            admin.users.create(
                name=name,
                email=email,
                password=password,
                password_verify=password,
                institution=institution,
            )
    except Exception as error:
        raise WorkbenchError(
            f"cannot create researcher {email} on {admin.name}: {reason(error)}"
        ) from None
    return password


def datasite_summary(admin: Any) -> dict:
    """Datasets, number of accounts and pending code requests on the admin's datasite."""
    with quiet():
        datasets = [dataset.name for dataset in admin.datasets.get_all()]
        users = len(admin.users.get_all())
        pending = sum(1 for request in admin.requests if status_name(request.status) == "pending")
    return {"datasets": datasets, "users": users, "pending_requests": pending}
