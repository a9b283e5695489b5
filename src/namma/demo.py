"""Demo data for `namma serve --demo`: loaded at start-up, idempotent (a second start adds nothing).

Made-up people with example.com addresses. The password (and the Admin's TOTP key) are printed
in README.md and must never be used outside a demo.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.auth.deps import Principal
from namma.auth.permissions import permissions_for
from namma.auth.totp import totp_secret_encrypt
from namma.capital.service import investment_record
from namma.collections.penalties import penalties_apply
from namma.collections.service import collection_record
from namma.collections.waivers import loan_waive
from namma.kit.db import Database, transaction
from namma.kit.passwords import password_hash
from namma.models import (
    AgentAssignment,
    Branch,
    CapitalMethod,
    Customer,
    DisbursementMethod,
    KycStatus,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    Role,
    User,
)
from namma.models.collection import CollectionMethod
from namma.models.servicing import WaiverComponent
from namma.products.schemas import ProductTerms
from namma.products.service import ProductLimits, product_create

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "namma-demo-2026"
# The demo Admin's authenticator key (Admins must use TOTP): codes with
#   python -c "import pyotp; print(pyotp.TOTP('NAMMADEMOADMINTOTPSECRETKEYABCDE').now())"
DEMO_ADMIN_TOTP_SECRET = "NAMMADEMOADMINTOTPSECRETKEYABCDE"

log = structlog.get_logger(__name__)


async def demo_load(db: Database) -> None:
    async with transaction(db) as session:
        if await session.scalar(select(User.id).where(User.email == DEMO_ADMIN_EMAIL)):
            return
        secret_key = await _secret_key()
        hashed = await password_hash(DEMO_PASSWORD)
        head_office = Branch(code="HO", name="Head Office", is_head_office=True)
        branch = Branch(code="BLR01", name="Bengaluru Rural 01")
        session.add_all([head_office, branch])
        await session.flush()

        def staff(name: str, role: Role, email: str, phone: str, branch_id: object) -> User:
            user = User(
                name=name,
                role=role,
                email=email,
                phone=phone,
                branch_id=branch_id,
                password_hash=hashed,
            )
            session.add(user)
            return user

        admin = staff("Demo Admin", Role.ADMIN, DEMO_ADMIN_EMAIL, "9800000001", head_office.id)
        admin.totp_secret_encrypted = totp_secret_encrypt(
            DEMO_ADMIN_TOTP_SECRET, secret_key=secret_key
        )
        admin.totp_enabled_at = dt.datetime.now(dt.UTC)
        manager = staff(
            "Demo Manager", Role.MANAGER, "manager@example.com", "9800000002", branch.id
        )
        agent1 = staff("Demo Agent One", Role.AGENT, "agent1@example.com", "9800000003", branch.id)
        agent2 = staff("Demo Agent Two", Role.AGENT, "agent2@example.com", "9800000004", branch.id)
        portal = staff("Kamala D.", Role.CUSTOMER, "kamala@example.com", "9800000005", None)
        await session.flush()

        customers = [
            _customer(branch.id, "Kamala D.", "9800000005", "Hoskote", user_id=portal.id),
            _customer(branch.id, "Latha R.", "9800000006", "Hoskote"),
            _customer(branch.id, "Savitha M.", "9800000007", "Devanahalli"),
            _customer(branch.id, "Renuka S.", "9800000008", "Devanahalli"),
            _customer(branch.id, "Parvathi K.", "9800000009", "Hoskote"),
            _customer(branch.id, "Gowramma B.", "9800000010", "Vijayapura", kyc=KycStatus.PENDING),
            _customer(branch.id, "Shanthamma H.", "9800000011", "Devanahalli"),
        ]
        session.add_all(customers)
        await session.flush()
        session.add_all(
            [
                AgentAssignment(customer_id=customers[0].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[1].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[2].id, agent_id=agent2.id),
                AgentAssignment(customer_id=customers[3].id, agent_id=agent2.id),
                AgentAssignment(customer_id=customers[4].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[5].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[6].id, agent_id=agent2.id),
            ]
        )
        await session.flush()
        await _demo_lending(
            session,
            admin=admin,
            manager_id=manager.id,
            agents=(agent1, agent2),
            customers=customers,
        )
        await audit_record(
            session,
            actor=AuditActor.system(),
            action="demo.loaded",
            entity_type="installation",
            after={"branches": 2, "staff": 4, "customers": len(customers)},
        )
    log.info("demo.loaded", admin=DEMO_ADMIN_EMAIL)


async def _secret_key() -> str:
    from namma.config import get_settings

    return get_settings().secret_key.get_secret_value()


def _customer(
    branch_id: uuid.UUID,
    name: str,
    phone: str,
    village: str,
    *,
    user_id: uuid.UUID | None = None,
    kyc: KycStatus = KycStatus.VERIFIED,
) -> Customer:
    return Customer(
        branch_id=branch_id,
        user_id=user_id,
        name=name,
        phone=phone,
        village=village,
        household_monthly_income=Decimal("40000.00"),
        kyc_status=kyc,
    )


def _acting(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        role=user.role,
        branch_id=user.branch_id,
        permissions=permissions_for(user.role),
        session_id=uuid.uuid4(),
        via_cookie=False,
        must_change_password=False,
        ip="127.0.0.1",
        user_agent="namma demo",
        request_id=None,
    )


def _limits(
    min_principal: Decimal,
    max_principal: Decimal,
    min_rate: Decimal,
    max_rate: Decimal,
    default_rate: Decimal,
    min_installments: int,
    max_installments: int,
) -> ProductLimits:
    return ProductLimits(
        min_principal=min_principal,
        max_principal=max_principal,
        min_rate=min_rate,
        max_rate=max_rate,
        default_rate=default_rate,
        min_installments=min_installments,
        max_installments=max_installments,
    )


DEMO_PRODUCTS: list[tuple[str, str, dict[str, Any], ProductLimits]] = [
    (
        "DAILY-100",
        "Daily collection, up to 100 days",
        {"frequency": "daily"},
        _limits(
            Decimal("2000"), Decimal("20000"), Decimal("18"), Decimal("26"), Decimal("24"), 20, 100
        ),
    ),
    (
        "JLG-52W",
        "Joint liability group, weekly, 52 weeks",
        {
            "frequency": "weekly",
            "fees": [
                {"name": "processing", "timing": "disbursement", "basis": "percent", "value": "1"}
            ],
            "penalty": {"basis": "flat", "value": "50", "recurrence": "once", "grace_days": 3},
        },
        _limits(
            Decimal("10000"), Decimal("60000"), Decimal("18"), Decimal("26"), Decimal("24"), 26, 52
        ),
    ),
    (
        "FN-26",
        "Fortnightly, 26 installments",
        {"frequency": "fortnightly"},
        _limits(
            Decimal("10000"), Decimal("80000"), Decimal("18"), Decimal("26"), Decimal("22"), 12, 26
        ),
    ),
    (
        "MON-12",
        "Monthly, 12 installments",
        {"frequency": "monthly", "installment_multiple": "1.00", "installment_rounding": "up"},
        _limits(
            Decimal("20000"), Decimal("100000"), Decimal("15"), Decimal("24"), Decimal("20"), 6, 24
        ),
    ),
    (
        "FLAT-W",
        "Flat rate, weekly",
        {"frequency": "weekly", "interest_method": "flat"},
        _limits(
            Decimal("5000"), Decimal("30000"), Decimal("10"), Decimal("14"), Decimal("12"), 12, 52
        ),
    ),
    (
        "BULLET-6M",
        "Bullet, one payment at six months",
        {"frequency": "monthly", "amortization": "bullet"},
        _limits(
            Decimal("5000"), Decimal("50000"), Decimal("12"), Decimal("24"), Decimal("18"), 1, 12
        ),
    ),
]


# Before the demo's oldest disbursement (28 days ago).
OPENING_DAYS_AGO = 60
DEMO_CAPITAL_BANK = Decimal("500000.00")
DEMO_CAPITAL_CASH = Decimal("200000.00")


async def _demo_lending(
    session: AsyncSession,
    *,
    admin: User,
    manager_id: uuid.UUID,
    agents: tuple[User, User],
    customers: list[Customer],
) -> None:
    """The preset products, and loans in every state, with repayments."""
    from namma.loans import service as loans

    manager = await session.get(User, manager_id)
    assert manager is not None
    as_admin, as_manager = _acting(admin), _acting(manager)
    products = {}
    for code, name, terms, limits in DEMO_PRODUCTS:
        product, _ = await product_create(
            session,
            actor=as_admin.audit_actor,
            created_by_id=admin.id,
            code=code,
            name=name,
            description=None,
            terms=ProductTerms.model_validate(terms),
            limits=limits,
        )
        products[code] = product

    today = loans.today_india()
    # The books start with the owners' capital: in the bank, and cash at the branch that pays
    # loans out in cash (so that no cash or bank balance is ever below zero).
    opened = today - dt.timedelta(days=OPENING_DAYS_AGO)
    for method, amount, at_branch in (
        (CapitalMethod.BANK, DEMO_CAPITAL_BANK, None),
        (CapitalMethod.CASH, DEMO_CAPITAL_CASH, customers[0].branch_id),
    ):
        await investment_record(
            session,
            principal=as_admin,
            amount=amount,
            source="Founders (demo)",
            invested_on=opened,
            method=method,
            reference=None,
            description="Opening capital of the demo",
            branch_id=at_branch,
        )
    agent_of = {
        0: agents[0],
        1: agents[0],
        2: agents[1],
        3: agents[1],
        4: agents[0],
        5: agents[0],
        6: agents[1],
    }

    async def apply(
        index: int, code: str, amount: str, count: int, refinances: Loan | None = None
    ) -> Loan:
        return await loans.loan_apply(
            session,
            principal=_acting(agent_of[index]),
            customer_id=customers[index].id,
            product_id=products[code].id,
            amount=Decimal(amount),
            annual_rate=None,
            installments=count,
            first_due_on=None,
            purpose="Dairy cattle" if index % 2 else "Tailoring shop",
            refinances_id=refinances.id if refinances else None,
        )

    async def disburse(loan: Loan, days_ago: int, method: DisbursementMethod) -> None:
        await loans.loan_approve(session, principal=as_manager, loan_id=loan.id)
        await loans.loan_disburse(
            session,
            principal=as_manager,
            loan_id=loan.id,
            disbursed_on=today - dt.timedelta(days=days_ago),
            method=method,
            reference=None if method is DisbursementMethod.CASH else f"UTR{loan.loan_number[-6:]}",
        )

    async def collect(loan: Loan, index: int, amount: Decimal, days_ago: int) -> None:
        # As through the API: the customer's receipt message follows, by the job worker (the
        # receipt's PDF is rendered when it is first downloaded).
        await collection_record(
            session,
            principal=_acting(agent_of[index]),
            loan_id=loan.id,
            amount=amount,
            collected_on=today - dt.timedelta(days=days_ago),
            method=CollectionMethod.CASH,
            reference=None,
            remarks="Centre meeting",
            client_id=None,
            backdate_days=60,
        )

    async def installment_total(loan: Loan, number: int) -> Decimal:
        row = await session.scalar(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan.id)
            .where(LoanInstallment.number == number)
        )
        assert row is not None
        return row.principal_due + row.interest_due + row.fee_due + row.penalty_due

    # Active, paying on time for two weeks, then a missed installment (overdue).
    weekly = await apply(0, "JLG-52W", "30000", 52)
    await disburse(weekly, 28, DisbursementMethod.CASH)
    await collect(weekly, 0, await installment_total(weekly, 1), 21)
    await collect(weekly, 0, await installment_total(weekly, 2), 14)
    fortnightly = await apply(2, "FN-26", "40000", 26)
    await disburse(fortnightly, 20, DisbursementMethod.UPI)
    await collect(fortnightly, 2, await installment_total(fortnightly, 1), 6)
    await disburse(await apply(3, "MON-12", "50000", 12), 10, DisbursementMethod.BANK_TRANSFER)
    flat = await apply(1, "FLAT-W", "15000", 26)
    await disburse(flat, 21, DisbursementMethod.CASH)
    await collect(flat, 1, await installment_total(flat, 1), 14)
    half = (await installment_total(flat, 2) / 2).quantize(Decimal("0.01"))
    await collect(flat, 1, half, 7)  # a partly paid installment

    # Closed: a daily loan repaid in full on its last due date.
    daily = await apply(6, "DAILY-100", "5000", 25)
    await disburse(daily, 28, DisbursementMethod.CASH)
    total = sum([await installment_total(daily, n) for n in range(1, 26)], Decimal("0.00"))
    await collect(daily, 6, total, 3)
    # Pre-closed: paid off early with the payoff quote.
    early = await apply(6, "JLG-52W", "10000", 26)
    await disburse(early, 14, DisbursementMethod.CASH)
    await collect(early, 6, await _payoff(session, early, today), 0)
    # Refinanced: a top-up whose disbursement paid the fortnightly loan off.
    top_up = await apply(2, "FN-26", "70000", 26, refinances=fortnightly)
    await disburse(top_up, 0, DisbursementMethod.UPI)

    written_off = await apply(4, "BULLET-6M", "10000", 6)
    await disburse(written_off, 25, DisbursementMethod.CASH)
    await loans.loan_write_off(
        session,
        principal=as_admin,
        loan_id=written_off.id,
        reason="Borrower migrated; untraceable",
        on=today,
    )
    # Something recovered from the written-off borrower later.
    await collect(written_off, 4, Decimal("2000.00"), 0)
    # Tonight's penalties as of today (the weekly loan's missed installment is past its grace),
    # and a Manager's goodwill waiver on the flat loan.
    await penalties_apply(session, as_of=today)
    await loan_waive(
        session,
        principal=as_manager,
        loan_id=flat.id,
        component=WaiverComponent.INTEREST,
        amount=Decimal("10.00"),
        reason="Borrower hospitalised for a week; goodwill",
    )

    approved = await apply(1, "JLG-52W", "12000", 52)
    await loans.loan_approve(session, principal=as_manager, loan_id=approved.id)
    await apply(4, "JLG-52W", "20000", 52)  # waits for a decision
    rejected = await apply(2, "MON-12", "30000", 12)
    await loans.loan_reject(
        session, principal=as_manager, loan_id=rejected.id, reason="Income not verified"
    )
    withdrawn = await apply(3, "FLAT-W", "8000", 12)
    await loans.loan_withdraw(session, principal=_acting(agents[1]), loan_id=withdrawn.id)


async def _payoff(session: AsyncSession, loan: Loan, on: dt.date) -> Decimal:
    """What closes ``loan`` on ``on`` (the money core's payoff quote)."""
    from namma.finance import payoff_quote
    from namma.loans.service import loan_dues, loan_schedule_compute

    await session.refresh(loan)
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    rows = (
        await session.scalars(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan.id)
            .order_by(LoanInstallment.number)
        )
    ).all()
    quote = payoff_quote(
        schedule=loan_schedule_compute(loan, version), dues=loan_dues(rows), as_of=on
    )
    return quote.total
