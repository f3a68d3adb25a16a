"""The JSON API fuzzed from its own /openapi.json with schemathesis: never a 500, and a
forged request never writes.

Every documented operation gets generated requests (valid ones, invalid ones, and valid
ones naming rows that exist in the path), sent three ways:

- anonymously, or with a made-up bearer token: refused, and the database is unchanged;
- as a logged-in admin whose CSRF token is missing or wrong (a forged cross-site request;
  the state-changing operations only): refused, and the database is unchanged;
- as a logged-in admin with the session's CSRF token: never a 5xx, and every answer is one
  the document promises (status code, content type, body schema).

schemathesis' pytest plugin cannot load a schema from a fixture with this pytest
(`schemathesis.pytest.from_fixture` fails on pytest 9's node ids), and a schema loaded at
import time would need a database then; so each test loads the document from its own app
and runs one Hypothesis test per operation (as subtests).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, example, find, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import inspect, select, table, text

from antirelou import operations
from antirelou.clock import VirtualClock
from antirelou.db import make_engine
from antirelou.inbound import receive
from antirelou.service import Service
from antirelou.web.guard import CSRF_HEADER, cookie_name
from tests.dashboard_kit import ADMIN, add_accounts, client_for, dashboard_app
from tests.helpers import LINE, make_settings, sms
from tests.test_raids import fr_mobile

QUIET_LINE = "+33939000022"  # no incident: one can be opened on it
BASE_URL = "https://testserver"  # the session cookie is Secure (__Host- prefix)
EXAMPLES = 25  # per operation and per way of calling it
FIRST = settings(database=None, phases=[Phase.generate])  # find(): no search, no shrinking
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # the examples depend on the database each test builds afresh
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
Operation: TypeAlias = schemathesis.APIOperation[Any, Any, Any, Any]
Case: TypeAlias = schemathesis.Case[Any]
PATH_PARAMETER = re.compile(r"{(\w+)}")
NOTHING = st.none()


@dataclass
class Api:
    service: Service
    app: FastAPI
    schema: schemathesis.BaseSchema
    # path parameter -> values naming rows that exist (or, per operation path, rows to use up)
    existing: dict[str, list[Any] | dict[str, list[Any]]]
    statuses: dict[str, Counter[int]] = field(default_factory=dict)  # per operation

    def operations(self) -> list[Operation]:
        results = list(self.schema.get_all_operations())
        found = [result.ok() for result in results if isinstance(result, Ok)]
        assert len(found) == len(results), "the document has operations schemathesis cannot use"
        assert len(found) >= 20, "the document lost operations"
        return found

    def cases(self, operation: Operation) -> st.SearchStrategy[Case]:
        strategies = [
            operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
            operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
        ]
        names = PATH_PARAMETER.findall(operation.path)
        if names:
            known = st.fixed_dictionaries(
                {n: st.sampled_from(self.rows(operation, n)) for n in names}
            )
            strategies.append(known.flatmap(lambda p: operation.as_strategy(path_parameters=p)))
        return st.one_of(strategies)

    def explicit_cases(self, operation: Operation) -> list[Case]:
        """The simplest valid request naming each existing row, so that every one is tried
        whatever the fuzzing draws."""
        names = PATH_PARAMETER.findall(operation.path)
        rows = itertools.product(*(self.rows(operation, n) for n in names)) if names else []
        return [
            find(
                operation.as_strategy(path_parameters=dict(zip(names, row, strict=True))),
                lambda _: True,
                settings=FIRST,
            )
            for row in rows
        ]

    def rows(self, operation: Operation, name: str) -> list[Any]:
        values = self.existing[name]
        return values[operation.path] if isinstance(values, dict) else values

    def fuzz(
        self,
        subtests: pytest.Subtests,
        operations: list[Operation],
        send: Callable[[Case, Any], int],
        extra: st.SearchStrategy[Any] = NOTHING,
    ) -> None:
        """Call `send(case, a value drawn from extra)` on generated cases of each operation;
        it returns the status code, counted per operation."""
        for operation in operations:
            with subtests.test(operation.label):
                self._fuzz_one(operation, send, extra)
        for operation in operations:  # the requests really went out
            sent = self.statuses[operation.label].total()
            assert sent >= EXAMPLES // 2, f"{operation.label}: only {sent} requests"

    def _fuzz_one(
        self,
        operation: Operation,
        send: Callable[[Case, Any], int],
        extra: st.SearchStrategy[Any],
    ) -> None:
        seen = self.statuses.setdefault(operation.label, Counter())

        @FUZZ
        @given(case=self.cases(operation), drawn=extra)
        def run(case: Case, drawn: Any) -> None:
            seen[send(case, drawn)] += 1

        simplest = find(extra, lambda _: True, settings=FIRST)
        for case in reversed(self.explicit_cases(operation)):  # run in the listed order
            run = example(case=case, drawn=simplest)(run)
        run()


def seed(service: Service) -> dict[str, list[Any] | dict[str, list[Any]]]:
    """Texts, an open incident and replies it holds, for the path parameters to name."""
    texts = [receive(service, sms(sender=fr_mobile(i), body=f"Salut {i}")) for i in range(3)]
    incident = operations.open_incident(service, LINE, "test")
    held = [receive(service, sms(sender=fr_mobile(10 + i), body="Coucou")) for i in range(8)]
    reply_ids = [r.reply_id for r in held]
    assert None not in reply_ids
    return {
        "number": [LINE, QUIET_LINE],
        "message_id": [r.message_id for r in texts + held],
        "incident_id": [incident],
        # A released reply cannot be cancelled, and the other way round: one pool each.
        "reply_id": {
            "/api/held/{reply_id}/release": reply_ids[:4],
            "/api/held/{reply_id}/cancel": reply_ids[4:],
        },
    }


def snapshot(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: a write of any kind changes it."""
    with service.engine.connect() as conn:
        return {
            name: sorted(
                map(tuple, conn.execute(select(text("*")).select_from(table(name)))), key=repr
            )
            for name in inspect(conn).get_table_names()
        }


def without_bearer(case: Case) -> None:
    """Drop the made-up bearer token that the document's security scheme makes schemathesis
    add: the app would take it over the session cookie (and refuse it)."""
    if case.headers:
        for name in [n for n in case.headers if n.lower() == "authorization"]:
            del case.headers[name]


def session_of(api: Api) -> tuple[dict[str, str], str]:
    """An admin's session cookie and CSRF token, from logging in through the form."""
    with client_for(api.app, ADMIN) as (client, csrf):
        name = cookie_name(api.service)
        cookie = client.cookies.get(name)
    assert cookie
    assert csrf
    return {name: cookie}, csrf


@pytest.fixture
def api(database_url: str, clock: VirtualClock) -> Iterator[Api]:
    lines = [{"number": n, "provider": "sandbox"} for n in (LINE, QUIET_LINE)]
    service = Service(make_settings(database_url, lines=lines), make_engine(database_url), clock)
    service.sync_lines()
    existing = seed(service)
    add_accounts(service)
    app = dashboard_app(service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config())
    yield Api(service, app, schema, existing)
    shutdown_lifespans()  # schemathesis keeps the app's lifespan running until told
    service.dispose()


def test_anonymous_requests_are_refused_and_write_nothing(
    api: Api, subtests: pytest.Subtests
) -> None:
    before = snapshot(api.service)

    def send(case: Case, _: None) -> int:
        response = case.call(base_url=BASE_URL)  # no credential, or a made-up bearer token
        # A body that is not even JSON is refused (400) before the credential is looked at.
        refused = {401, 400} if case.method.upper() in UNSAFE else {401}
        assert response.status_code in refused, (response.status_code, case.as_curl_command())
        assert snapshot(api.service) == before, case.as_curl_command()
        return response.status_code

    api.fuzz(subtests, api.operations(), send)
    for label, seen in api.statuses.items():
        assert seen[401], f"{label}: never refused for want of a credential"


def test_forged_requests_are_refused_and_write_nothing(api: Api, subtests: pytest.Subtests) -> None:
    cookies, csrf = session_of(api)
    before = snapshot(api.service)
    forged = st.sampled_from(["", "forged", csrf[:-1], csrf + "x", csrf.swapcase()])

    def send(case: Case, token: str) -> int:
        without_bearer(case)
        headers = {CSRF_HEADER: token} if token else {}
        response = case.call(base_url=BASE_URL, cookies=cookies, headers=headers)
        assert response.status_code in (400, 403), (response.status_code, case.as_curl_command())
        assert snapshot(api.service) == before, case.as_curl_command()
        return response.status_code

    unsafe = [op for op in api.operations() if op.method.upper() in UNSAFE]
    assert len(unsafe) >= 10
    api.fuzz(subtests, unsafe, send, forged)
    for label, seen in api.statuses.items():
        assert seen[403], f"{label}: never refused for want of the CSRF token"


def test_an_admin_gets_what_the_document_promises(api: Api, subtests: pytest.Subtests) -> None:
    for operation in api.operations():  # the app answers bad input with 400, not 422
        documented = operation.responses.status_codes
        assert "400" in documented, operation.label
        assert "422" not in documented, operation.label
    cookies, csrf = session_of(api)

    def send(case: Case, _: None) -> int:
        without_bearer(case)
        response = case.call_and_validate(
            base_url=BASE_URL, headers={CSRF_HEADER: csrf}, cookies=cookies, checks=CHECKS
        )
        return response.status_code

    # Actions on the rows named in the path first: the bulk ones (cancel every held reply)
    # would leave them nothing to act on.
    ordered = sorted(api.operations(), key=lambda op: not PATH_PARAMETER.search(op.path))
    api.fuzz(subtests, ordered, send)
    for label, seen in api.statuses.items():
        assert not seen[401] + seen[403], f"{label}: the admin was refused: {seen}"
        assert any(200 <= code < 300 for code in seen), f"{label}: never succeeded: {seen}"
