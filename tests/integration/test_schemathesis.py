"""Property-based fuzzing of the whole API from its OpenAPI document: no 500s, responses
match their declared schemas. Every endpoint added later is covered automatically."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from factories import bearer, platform_admin_key
from o2oloop import migrations
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.db import Database

_workdir = Path(tempfile.mkdtemp(prefix="o2o-fuzz-"))
_db = Database.from_url(f"sqlite:///{_workdir / 'fuzz.db'}")
migrations.upgrade(_db)
_app = create_app(Settings(env="test", data_dir=_workdir), _db)
_headers = bearer(platform_admin_key(_db))

schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_keeps_its_schema(case) -> None:
    case.call_and_validate(
        headers=_headers, checks=[not_a_server_error, response_schema_conformance]
    )
