"""Provisioning for loan losses (docs/ledger.md "Provisioning", D-190 to D-193).

- ``provisioning_rates`` / ``provisioning_rate_set``: the rate (percent of outstanding
  principal) per prudential class; the Admin changes one, audited; the next close of business
  uses it.
- ``provisions_post``: the close of business's provisioning step for a business date ``D``.
  Every loan the close maintains gets its prudential class (`namma.finance.provisioning`, read
  as SQL) and the provision it needs, ``round(outstanding principal × rate / 100, 2)``; a loan
  that left the portfolio (closed, pre-closed, refinanced) needs none. The difference from what
  the ledger already holds for each loan (``loans.provision_held``) is posted as one journal
  entry per branch (``provision``): per loan a ``loan_loss_provision`` line (credit: more
  provided; debit: released), and the net to ``provision_expense``. Idempotent per date: a
  second run finds every loan provided for exactly and posts nothing.
- ``provision_release_legs``: what a write-off adds to its entry — the loan's provision is
  released (Dr ``loan_loss_provision``, Cr ``provision_expense``), so the write-off's expense
  is borne net of what was already provided (D-193).

A restructured loan (``loans.restructured_on``, issue 22 item 2) is provided for as
sub-standard at least (``RESTRUCTURED_SQL``) until the close of business upgrades it after a year
of satisfactory performance (``restructured_upgrade``, D-210); until then it is non-performing
and accrues no interest (``NON_PERFORMING_SQL``, read by the close's accrual step).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.finance.owed import owed
from namma.finance.provisioning import (
    CLASSES,
    DEFAULT_RATES,
    PROBATION_MAX_DAYS_PAST_DUE,
    PROVISION_CLASS_RULES,
    RESTRUCTURE_PROBATION_MONTHS,
    STANDARD_OTHERWISE,
    class_boundaries,
    non_performing,
)
from namma.kit.errors import InvalidInputError, NotFoundError
from namma.kit.sqltext import SqlColumns, SqlText, sql_case, sql_of
from namma.ledger.service import Leg, journal_post
from namma.models import AccountKind, ProvisionClass, ProvisioningRate

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
RATE_PLACES = Decimal("0.0001")

# Whether a loan counts as restructured, as SQL over the loan row `l`: restructured
# (`loans.restructured_on`, set by an approved restructuring) and not upgraded since
# (`restructure_upgraded_on`, set by the close after a year of satisfactory performance, D-210;
# a new restructuring clears it). A restructured standard loan is provided for as sub-standard
# (RBI). The Python reading (`finance.provisioning.provision_class(restructured=…)`) takes the
# same flag.
RESTRUCTURED_SQL = "(l.restructured_on IS NOT NULL AND l.restructure_upgraded_on IS NULL)"


class _LoanColumns(SqlColumns):
    """The loan row `l` as the class rules read it: its columns, and `restructured` (the hook)."""

    restructured = SqlText(RESTRUCTURED_SQL)


# Whether loan `l` is a non-performing asset (NPA, or restructured and not upgraded): the
# close's accrual step recognises no interest on it (`finance.provisioning.non_performing`).
NON_PERFORMING_SQL = sql_of(non_performing, _LoanColumns("l"))

# The restructured loans the close of :d upgrades (`finance.provisioning.
# restructure_upgrade_due`, the same rule on Python values): a year has passed since the
# restructuring (:months months, month ends clamped as `add_months` does); not NPA; an
# installment asking money fell due in the year; and no installment due by the year's end still
# owes, or was more than :max_dpd days past due on a day of the year — unpaid from its due date
# to the day before it was paid in full (`paid_at`, in India). Locked with the loans by step 3.
RESTRUCTURE_UPGRADE = f"""
WITH probation AS (
    SELECT l.id AS loan_id, l.restructured_on AS restructured_on,
           CAST(l.restructured_on + make_interval(months => :months) AS date) AS year_end
      FROM loans l
     WHERE l.status = 'active' AND l.restructured_on IS NOT NULL
       AND l.restructure_upgraded_on IS NULL AND CAST(l.asset_class AS text) <> 'npa'
), performed AS (
    SELECT p.* FROM probation p
     WHERE p.year_end <= CAST(:d AS date)
       AND EXISTS (
           SELECT 1 FROM loan_installments i
            WHERE i.loan_id = p.loan_id
              AND i.due_date > p.restructured_on AND i.due_date <= p.year_end
              AND i.principal_due + i.interest_due + i.fee_due > 0)
       AND NOT EXISTS (
           SELECT 1 FROM loan_installments i
            WHERE i.loan_id = p.loan_id AND i.due_date <= p.year_end
              AND ({sql_of(owed, "i")} > 0
                   OR GREATEST(i.due_date + :max_dpd + 1, p.restructured_on + 1)
                      <= LEAST(CAST(i.paid_at AT TIME ZONE 'Asia/Kolkata' AS date) - 1,
                               p.year_end)))
)
UPDATE loans l
   SET restructure_upgraded_on = CAST(:d AS date), updated_at = now()
  FROM performed p
 WHERE l.id = p.loan_id
RETURNING l.id, l.branch_id, p.restructured_on, p.year_end
"""  # noqa: S608 (constant fragments; values are bound parameters)


# The prudential class of loan `l` on :d (`namma.finance.provisioning.PROVISION_CLASS_RULES`).
PROVISION_CLASS_SQL = sql_case(
    PROVISION_CLASS_RULES,
    STANDARD_OTHERWISE,
    _LoanColumns("l"),
    SqlText("CAST(:doubtful_from AS date)"),
    SqlText("CAST(:loss_from AS date)"),
)

# The loans the step touches: active ones, and those still holding a provision (a loan closed,
# pre-closed or refinanced since the last close: its provision is released). Locked in id order
# as every step of the close and a collection do.
LOCK_PROVISION_LOANS = """
SELECT count(*) FROM (
    SELECT 1 FROM loans l WHERE l.status = 'active' OR l.provision_held <> 0
     ORDER BY l.id FOR UPDATE
) locked
"""

# Per loan: its class and the provision it needs as of :d (a loan the close does not maintain
# — not active, or disbursed after :d — keeps its class and needs none).
PROVISIONS_COMPUTE = f"""
CREATE TEMP TABLE cob_provision ON COMMIT DROP AS
WITH classed AS (
    SELECT l.id AS loan_id, l.branch_id, l.outstanding_principal, l.provision_held AS held,
           CAST(l.provision_class AS text) AS old_class,
           (l.status = 'active' AND l.disbursed_on <= CAST(:d AS date)) AS maintained,
           {PROVISION_CLASS_SQL} AS class
      FROM loans l
     WHERE l.status = 'active' OR l.provision_held <> 0
)
SELECT c.loan_id, c.branch_id, c.held, c.maintained,
       CASE WHEN c.maintained THEN c.class ELSE c.old_class END AS class,
       CASE WHEN c.maintained THEN round(c.outstanding_principal * r.rate / 100, 2)
            ELSE 0 END AS required
  FROM classed c
  JOIN provisioning_rates r ON CAST(r.asset_class AS text) = c.class
"""  # noqa: S608 (constant fragments; values are bound parameters)

PROVISIONS_CHANGED = """
SELECT loan_id, branch_id, required - held AS delta
  FROM cob_provision WHERE required <> held
 ORDER BY branch_id, loan_id
"""

PROVISIONS_WRITE = """
WITH changed AS (
    UPDATE loans l
       SET provision_held = p.required,
           provision_class = CAST(p.class AS provision_class),
           updated_at = now()
      FROM cob_provision p
     WHERE l.id = p.loan_id
       AND (l.provision_held, CAST(l.provision_class AS text))
           IS DISTINCT FROM (p.required, p.class)
    RETURNING 1
)
SELECT count(*) FROM changed
"""

PROVISIONS_SUMMARY = """
SELECT class, count(*), COALESCE(sum(required), 0)
  FROM cob_provision WHERE maintained GROUP BY class
"""


async def provisioning_rates_ensure(session: AsyncSession) -> None:
    """Every class has its row: the migration seeds them with the defaults; a class whose row
    is missing (a table emptied by hand) gets its default again, never a silent 0."""
    await session.execute(
        insert(ProvisioningRate)
        .values([{"asset_class": ProvisionClass(c), "rate": DEFAULT_RATES[c]} for c in CLASSES])
        .on_conflict_do_nothing()
    )


async def provisioning_rates(session: AsyncSession) -> list[ProvisioningRate]:
    """The rate of every class, in the classes' order (standard … loss)."""
    await provisioning_rates_ensure(session)
    rows = {r.asset_class: r for r in await session.scalars(select(ProvisioningRate))}
    return [rows[ProvisionClass(c)] for c in CLASSES]


async def provisioning_rate_set(
    session: AsyncSession,
    *,
    actor: AuditActor,
    asset_class: ProvisionClass,
    rate: Decimal,
) -> ProvisioningRate:
    """Set the rate of one class (percent of outstanding principal, 0–100, at most 4 places);
    audited (``provisioning.rate_changed``). It applies from the next close of business: what
    the ledger holds changes only there. The same rate again changes nothing."""
    if rate < 0 or rate > HUNDRED:
        raise InvalidInputError("rate", "A provisioning rate is a percent between 0 and 100.")
    if rate != rate.quantize(RATE_PLACES):
        raise InvalidInputError("rate", "A provisioning rate has at most 4 decimal places.")
    rate = rate.quantize(RATE_PLACES)  # as the column keeps it (the answer and the audit too)
    await provisioning_rates_ensure(session)
    row = await session.scalar(
        select(ProvisioningRate)
        .where(ProvisioningRate.asset_class == asset_class)
        .with_for_update()
    )
    if row is None:
        raise NotFoundError(f"No provisioning rate for {asset_class.value}.")
    if row.rate == rate:
        return row
    before = {"rate": row.rate}
    row.rate = rate
    row.updated_by_id = actor.actor_id
    row.updated_at = dt.datetime.now(dt.UTC)
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="provisioning.rate_changed",
        entity_type="provisioning_rate",
        entity_id=asset_class.value,
        before=before,
        after={"rate": rate},
    )
    return row


def provision_release_legs(loan_id: uuid.UUID, held: Decimal) -> list[Leg]:
    """The legs that release a loan's whole provision (a write-off): Dr provision, Cr expense.
    Zero legs are dropped by ``journal_post``."""
    return [
        Leg(AccountKind.LOAN_LOSS_PROVISION, debit=held, loan_id=loan_id),
        Leg(AccountKind.PROVISION_EXPENSE, credit=held, loan_id=loan_id),
    ]


def provision_legs(deltas: list[tuple[uuid.UUID, Decimal]]) -> list[Leg]:
    """One branch's provision journal from each loan's difference (needed − held): a credit to
    the provision per loan that needs more, a debit per loan that needs less, and the net to
    the expense (debit: charged; credit: written back)."""
    legs: list[Leg] = []
    for loan_id, delta in deltas:
        if delta > 0:
            legs.append(Leg(AccountKind.LOAN_LOSS_PROVISION, credit=delta, loan_id=loan_id))
        elif delta < 0:
            legs.append(Leg(AccountKind.LOAN_LOSS_PROVISION, debit=-delta, loan_id=loan_id))
    net = sum((delta for _, delta in deltas), ZERO)
    if net > 0:
        legs.append(Leg(AccountKind.PROVISION_EXPENSE, debit=net))
    elif net < 0:
        legs.append(Leg(AccountKind.PROVISION_EXPENSE, credit=-net))
    return legs


async def provisions_post(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> dict[str, Any]:
    """The close of business's provisioning step (see the module docstring). Returns what it
    did: entries posted, loans changed, provided and released, and the portfolio's provision by
    class after the step."""
    await provisioning_rates_ensure(session)
    doubtful_from, loss_from = class_boundaries(business_date)
    params = {"d": business_date, "doubtful_from": doubtful_from, "loss_from": loss_from}
    await session.execute(text(LOCK_PROVISION_LOANS))
    await session.execute(text("DROP TABLE IF EXISTS cob_provision"))
    await session.execute(text(PROVISIONS_COMPUTE), params)

    by_branch: dict[uuid.UUID, list[tuple[uuid.UUID, Decimal]]] = defaultdict(list)
    for loan_id, branch_id, delta in (await session.execute(text(PROVISIONS_CHANGED))).all():
        by_branch[branch_id].append((loan_id, Decimal(delta)))
    provided = released = ZERO
    entries = 0
    for branch_id, deltas in by_branch.items():
        up = sum((d for _, d in deltas if d > 0), ZERO)
        down = -sum((d for _, d in deltas if d < 0), ZERO)
        entry = await journal_post(
            session,
            kind="provision",
            entry_date=business_date,
            memo=f"Provision for loan losses as of {business_date.isoformat()}: "
            f"{len(deltas)} loan(s), provided {up:.2f}, released {down:.2f}",
            branch_id=branch_id,
            created_by_id=actor.actor_id,
            legs=provision_legs(deltas),
        )
        await audit_record(
            session,
            actor=actor,
            action="provision.posted",
            entity_type="journal_entry",
            entity_id=str(entry.id),
            after={
                "business_date": business_date,
                "branch_id": branch_id,
                "loans": len(deltas),
                "provided": up,
                "released": down,
                "net": up - down,
            },
        )
        provided += up
        released += down
        entries += 1
    changed = int((await session.scalar(text(PROVISIONS_WRITE))) or 0)
    by_class = {
        name: {"loans": int(n), "provision": str(Decimal(amount).quantize(Decimal("0.01")))}
        for name, n, amount in (await session.execute(text(PROVISIONS_SUMMARY))).all()
    }
    await session.execute(text("DROP TABLE cob_provision"))
    return {
        "entries": entries,
        "loans": changed,
        "provided": str(provided),
        "released": str(released),
        "by_class": dict(sorted(by_class.items())),
    }


async def restructured_upgrade(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> int:
    """Upgrade the restructured loans whose year after the restructuring performed
    (`RESTRUCTURE_UPGRADE`, D-210) as of the close of ``business_date``: each is marked
    (`loans.restructure_upgraded_on`) and audited (`loan.restructure_upgraded`); the same close
    then accrues its interest and provides for it by its days past due. Run by the close's step
    3, which has locked the active loans. Returns how many were upgraded."""
    rows = (
        await session.execute(
            text(RESTRUCTURE_UPGRADE),
            {
                "d": business_date,
                "months": RESTRUCTURE_PROBATION_MONTHS,
                "max_dpd": PROBATION_MAX_DAYS_PAST_DUE,
            },
        )
    ).all()
    for loan_id, _, restructured_on, year_end in rows:
        await audit_record(
            session,
            actor=actor,
            action="loan.restructure_upgraded",
            entity_type="loan",
            entity_id=str(loan_id),
            before={"restructured_on": restructured_on, "restructure_upgraded_on": None},
            after={
                "restructure_upgraded_on": business_date,
                "performed_through": year_end,
                "rule": (
                    f"{RESTRUCTURE_PROBATION_MONTHS} months after the restructuring, every "
                    "installment due paid, none more than "
                    f"{PROBATION_MAX_DAYS_PAST_DUE} days past due"
                ),
            },
        )
    return len(rows)
