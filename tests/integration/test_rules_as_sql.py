"""One rule, three readings: what an installment owes and its status (`namma.finance.owed`)
computed in Python, as SQL text (`sql_of`, the close of business) and as an SQLAlchemy
expression (`expression_of`, reports) agree row for row in PostgreSQL; and the scope of the
statements sent straight to the driver is generated from the ORM's expression."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, fields
from decimal import Decimal

from psycopg import sql
from sqlalchemy import Date, Numeric, column, select, values
from sqlalchemy.orm import aliased

from namma.auth.deps import Principal
from namma.auth.scope import (
    _DIALECT,
    customer_scope,
    customer_scope_sql,
    loan_scope,
    loan_scope_sql,
)
from namma.finance.owed import (
    STATUS_OTHERWISE,
    STATUS_RULES,
    counts_past_due,
    demanded,
    in_arrears,
    installment_status,
    owed,
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.kit.db import raw_connection, transaction
from namma.kit.sqltext import SqlText, expression_of, sql_case, sql_of
from namma.models import Customer, Loan, User

D = Decimal
ZERO = D("0.00")
TODAY = dt.date(2026, 12, 1)
RULES = (owed_principal, owed_interest, owed_fee, owed_penalty, owed, demanded, in_arrears)


@dataclass
class Row:
    due_date: dt.date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal
    penalty_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    penalty_paid: Decimal
    interest_waived: Decimal
    fee_waived: Decimal
    penalty_waived: Decimal


def _part(rng: random.Random, of: Decimal) -> Decimal:
    choice = rng.random()
    if choice < 0.35:
        return ZERO
    if choice < 0.7:
        return of
    return (of * D(rng.randint(1, 99)) / 100).quantize(D("0.01"))


def _rows(n: int) -> list[Row]:
    rng = random.Random(20261201)
    rows = []
    for _ in range(n):
        due = [D(rng.randint(0, 200000)) / 100 for _ in range(4)]
        p_paid, i_paid, f_paid, y_paid = (_part(rng, d) for d in due)
        i_waived = _part(rng, due[1] - i_paid)
        f_waived = _part(rng, due[2] - f_paid)
        y_waived = _part(rng, due[3] - y_paid)
        rows.append(
            Row(
                TODAY + dt.timedelta(days=rng.randint(-40, 40)),
                *due,
                p_paid,
                i_paid,
                f_paid,
                y_paid,
                i_waived,
                f_waived,
                y_waived,
            )
        )
    return rows


NAMES = [f.name for f in fields(Row)]


async def test_python_sql_text_and_sqlalchemy_readings_agree(app) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(400)
    today = SqlText("CAST(%s AS date)")
    text_columns = [sql_of(rule, "i") for rule in RULES] + [
        sql_of(counts_past_due, "i", today),
        sql_case(STATUS_RULES, STATUS_OTHERWISE, "i", today, SqlText(sql_of(owed, "i"))),
    ]
    placeholders = ", ".join(["(CAST(%s AS date)" + ", %s::numeric" * 11 + ")"] * len(rows))
    query = (
        f"SELECT {', '.join(text_columns)} FROM (VALUES {placeholders}) AS i({', '.join(NAMES)})"
    )
    params: list[object] = [TODAY, TODAY]
    for row in rows:
        params += [getattr(row, n) for n in NAMES]
    table = values(
        column("due_date", Date), *(column(n, Numeric(20, 2)) for n in NAMES[1:]), name="i"
    ).data([tuple(getattr(r, n) for n in NAMES) for r in rows])
    orm_query = select(
        *(expression_of(rule, table.c) for rule in RULES),
        expression_of(counts_past_due, table.c, TODAY),
    )
    async with transaction(app.state.db) as session:
        connection = await raw_connection(session)
        cursor = await connection.execute(query, params)
        from_text = await cursor.fetchall()
        from_orm = (await session.execute(orm_query)).all()
    statuses = set()
    for row, text_row, orm_row in zip(rows, from_text, from_orm, strict=True):
        python = [rule(row) for rule in RULES] + [counts_past_due(row, TODAY)]
        assert list(text_row[:-1]) == python, row
        assert list(orm_row) == python, row
        assert text_row[-1] == installment_status(row, TODAY), row
        statuses.add(text_row[-1])
    assert statuses == {"paid", "overdue", "partly_paid", "due"}  # every rule was exercised


def _principal(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        role=user.role,
        branch_id=user.branch_id,
        permissions=frozenset(),
        session_id=uuid.uuid4(),
        via_cookie=False,
        must_change_password=False,
        ip="127.0.0.1",
        user_agent=None,
        request_id=None,
    )


async def test_the_driver_scope_is_compiled_from_the_orm_expression(app, world) -> None:  # type: ignore[no-untyped-def]
    """The SQL form is SQLAlchemy's compilation of the ORM form — no second copy — made once
    per role; the caller's ids are its parameters."""
    for name in ("admin", "manager_a", "agent_a", "customer_user_a"):
        principal = _principal(getattr(world, name))
        text, params = customer_scope_sql(principal)
        compiled = customer_scope(principal, aliased(Customer, name="c")).compile(dialect=_DIALECT)
        assert text == compiled.string, name
        assert list(params) == [compiled.params[n] for n in compiled.positiontup or ()], name
        text, params = loan_scope_sql(principal)
        compiled = loan_scope(principal, aliased(Loan, name="l")).compile(dialect=_DIALECT)
        assert text == compiled.string, name
        assert list(params) == [compiled.params[n] for n in compiled.positiontup or ()], name
    # Per role shape: another agent gets the same text with their own id.
    first, first_params = loan_scope_sql(_principal(world.agent_a))
    second, second_params = loan_scope_sql(_principal(world.agent_b))
    assert first is second
    assert first_params == (world.agent_a.id,) and second_params == (world.agent_b.id,)


async def test_the_loan_scope_finds_the_loans_of_the_customers_in_scope(app, world) -> None:  # type: ignore[no-untyped-def]
    """`loan_scope` (ORM and driver forms) = the loans of `customer_scope`'s customers, and a
    Manager's only in their branch: for every role."""
    from namma.loans.service import loan_apply
    from namma.models import KycStatus
    from tests.integration.test_authorization_matrix import _product_id
    from tests.integration.test_loans import acting

    class Ctx:
        pass

    ctx = Ctx()
    ctx.app = app  # type: ignore[attr-defined]
    product_id = uuid.UUID(await _product_id(ctx))  # type: ignore[arg-type]
    async with transaction(app.state.db) as session:
        for customer, agent in (
            (world.customer_a, world.agent_a),
            (world.customer_b, world.agent_b),
        ):
            row = await session.get(Customer, customer.id)
            assert row is not None
            row.kyc_status = KycStatus.VERIFIED
            row.household_monthly_income = D("50000.00")
            await loan_apply(
                session,
                principal=acting(agent),
                customer_id=customer.id,
                product_id=product_id,
                amount=D("10000.00"),
                annual_rate=None,
                installments=12,
                first_due_on=None,
                purpose=None,
            )
    async with transaction(app.state.db) as session:
        connection = await raw_connection(session)
        every = {loan.customer_id: loan.id for loan in await session.scalars(select(Loan))}
        assert set(every) == {world.customer_a.id, world.customer_b.id}
        for name in (
            "admin",
            "manager_a",
            "manager_b",
            "agent_a",
            "agent_a2",
            "agent_b",
            "customer_user_a",
            "customer_user_b",
        ):
            principal = _principal(getattr(world, name))
            customers = set(
                await session.scalars(select(Customer.id).where(customer_scope(principal)))
            )
            expected = {every[c] for c in customers}
            orm = set(await session.scalars(select(Loan.id).where(loan_scope(principal))))
            scope, params = loan_scope_sql(principal)
            cursor = await connection.execute(
                sql.SQL("SELECT l.id FROM loans l WHERE {}").format(sql.SQL(scope)), params
            )
            driver = {row[0] for row in await cursor.fetchall()}
            assert orm == driver == expected, name
