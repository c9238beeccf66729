"""A factory datasite on a real PostgreSQL server (the pgserver wheel's binaries), end to
end and across a restart of both the datasite and the database server."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import psycopg2
import pytest

from workbench.errors import WorkbenchError
from workbench.remote import client, counting, review
from workbench.remote._scratch import scratch_config
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.config import config_from_dict
from workbench.remote.launch import start_datasite, stop_datasite
from workbench.remote.postgres import create_database, start_postgres, stop_postgres
from workbench.remote.upload import image_batch, upload_batches

pytestmark = pytest.mark.slow

PASSWORD_ENV = "WORKBENCH_TEST_PG_PASSWORD"
RESEARCHER = "pia@uni.example"
FRAMES = [np.random.default_rng(i).integers(0, 256, (640, 800), np.uint8) for i in range(3)]


def table_rows(server, database: str) -> dict[str, int]:
    """Rows per syft table in `database`, read with PostgreSQL's own client library."""
    with psycopg2.connect(server.url(database, with_password=True)) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        names = [row[0] for row in cursor.fetchall()]
        rows = {}
        for name in names:
            cursor.execute(f'SELECT count(*) FROM "{name}"')  # names read from the catalog
            rows[name] = cursor.fetchone()[0]
    return rows


@pytest.fixture
def postgres_folder():
    """Outside pytest's temporary folders: pytest makes their root 0700 again whenever it
    runs, and as root PostgreSQL runs as its own system user, which must enter them."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    yield folder / "postgres"
    shutil.rmtree(folder, ignore_errors=True)


def test_a_factory_on_postgresql_end_to_end_and_after_a_restart(
    tmp_path, postgres_folder, monkeypatch
):
    server = start_postgres(postgres_folder)
    try:
        create_database(server, "factory_pg")
        monkeypatch.setenv(PASSWORD_ENV, server.password)  # the datasite inherits it
        config = scratch_config(
            tmp_path,
            "factory-pg",
            release="auto",
            extra=f'db_url = "{server.url("factory_pg")}"\ndb_password_env = "{PASSWORD_ENV}"\n',
        )
        assert server.password not in config.path.read_text()  # no secret in the TOML
        start_datasite(config)
        try:
            admin = admin_login(config)
            password = add_researcher(admin, RESEARCHER, "Pia")
            batch = image_batch(FRAMES, ["a.png", "b.png", "c.png"], "legacy", 2.0)
            upload_batches(admin.client, "line-pg", [batch], mock_shape=(48, 64), progress=False)
            researcher = client.login([config], RESEARCHER, password)
            client.submit(researcher, counting.mean_intensity, "line-pg")
            review.approve(review.list_requests(admin, "pending")[0])
            client.start_runs(researcher, "mean_intensity")
            first = client.wait_for_results(researcher, "mean_intensity", timeout=300).iloc[0]
            expected = round(float(np.mean([np.mean(frame) for frame in FRAMES])), 3)
            assert (first["images"], first["mean_intensity"]) == (3, expected)
            # The tables live in PostgreSQL; only files stay in the state folder.
            rows = table_rows(server, "factory_pg")
            assert rows.get("User", 0) >= 2 and rows.get("Dataset", 0) == 1
            assert rows.get("Request", 0) == 1 and rows.get("QueueItem", 0) >= 1
            assert not list(config.state_dir.glob("*.sqlite*"))
        finally:
            stop_datasite(config)
        stop_postgres(server.folder)
        server = start_postgres(server.folder)  # same folder: same data, port and password
        start_datasite(config)
        try:
            admin = admin_login(config)
            researcher = client.login([config], RESEARCHER, password)
            datasite_client = researcher[config.name]
            assert [dataset.name for dataset in datasite_client.datasets.get_all()] == ["line-pg"]
            assert client.status_table(researcher, "mean_intensity").iloc[0]["request"] == (
                "approved"
            )
            after = client.collect(researcher, "mean_intensity").iloc[0]
            assert (after["images"], after["mean_intensity"]) == (3, expected)
            kept = table_rows(server, "factory_pg")
            assert all(kept.get(name, 0) >= count for name, count in rows.items())
        finally:
            stop_datasite(config)
    finally:
        stop_postgres(server.folder)


def test_the_database_password_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    config = config_from_dict(
        {
            "name": "factory-pg",
            "db_url": "postgresql://postgres@127.0.0.1:5432/factory_pg",
            "db_password_env": PASSWORD_ENV,
        }
    )
    with pytest.raises(WorkbenchError, match=f"{PASSWORD_ENV} is not set"):
        _ = config.database_url
    monkeypatch.setenv(PASSWORD_ENV, "pass word")
    with pytest.raises(WorkbenchError, match="letters, digits"):
        _ = config.database_url
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-Pass")
    assert config.database_url == "postgresql://postgres:s3cret-Pass@127.0.0.1:5432/factory_pg"
    with pytest.raises(WorkbenchError, match="sqlite:/// or postgresql://"):
        config_from_dict({"name": "factory-pg", "db_url": "mysql://x@y/z"})
