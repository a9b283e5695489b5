"""lending: customers' KYC, loan products, loans, installments, charges, number
sequences, and the general ledger (balanced and immutable, enforced by the database)

Revision ID: f1a2b3c4d5e6
Revises: d1a2b3c4d5e6
Create Date: 2026-11-25 03:40:04.878080
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f1a2b3c4d5e6"
down_revision: str | None = "d1a2b3c4d5e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_CUSTOMER_ENUMS = (
    sa.Enum(
        "aadhaar",
        "pan",
        "voter_id",
        "passport",
        "driving_licence",
        "ration_card",
        name="kyc_document_type",
    ),
    sa.Enum("pending", "verified", "rejected", name="kyc_status"),
    sa.Enum("active", "closed", name="customer_status"),
)
_TYPES_CREATED_WITH_TABLES = (
    "ledger_account_kind",
    "ledger_account_type",
    "loan_status",
    "disbursement_method",
    "schedule_status",
    "installment_status",
)

# Every journal entry balances: checked at COMMIT (deferred), after all its lines are in.
LEDGER_TRIGGERS = """
CREATE FUNCTION journal_entry_must_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_entry bigint;
    v_debit numeric;
    v_credit numeric;
    v_lines int;
BEGIN
    IF TG_TABLE_NAME = 'journal_entries' THEN
        v_entry := NEW.id;
    ELSE
        v_entry := NEW.entry_id;
    END IF;
    SELECT COALESCE(sum(debit), 0), COALESCE(sum(credit), 0), count(*)
      INTO v_debit, v_credit, v_lines
      FROM journal_lines WHERE entry_id = v_entry;
    IF v_lines < 2 OR v_debit <> v_credit THEN
        RAISE EXCEPTION 'journal entry % does not balance: debits %, credits %, % line(s)',
            v_entry, v_debit, v_credit, v_lines
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER journal_lines_balance
    AFTER INSERT ON journal_lines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_must_balance();

-- An entry with no lines at all is refused too.
CREATE CONSTRAINT TRIGGER journal_entries_have_lines
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_must_balance();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is not allowed (post a reversing entry)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER journal_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_lines_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON journal_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""


def upgrade() -> None:
    op.create_table(
        "loan_products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("code ~ '^[A-Z0-9-]{2,20}$'", name=op.f("ck_loan_products_code_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_products")),
        sa.UniqueConstraint("code", name=op.f("uq_loan_products_code")),
    )
    op.create_table(
        "number_sequences",
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_number_sequences_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("branch_id", "kind", "year", name=op.f("pk_number_sequences")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=160), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "branch_cash",
                "agent_cash",
                "bank",
                "loan_portfolio",
                "interest_receivable",
                "fee_receivable",
                "interest_income",
                "fee_income",
                "penalty_income",
                "recovery_income",
                "write_off_expense",
                "waiver_expense",
                "cash_shortage",
                "borrowings",
                "interest_expense",
                "capital",
                name="ledger_account_kind",
            ),
            nullable=False,
        ),
        sa.Column(
            "type",
            sa.Enum(
                "asset", "liability", "equity", "income", "expense", name="ledger_account_type"
            ),
            nullable=False,
        ),
        sa.Column("branch_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_ledger_accounts_agent_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_ledger_accounts_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_index(
        "uq_ledger_accounts_kind_branch_agent",
        "ledger_accounts",
        ["kind", "branch_id", "agent_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "loan_product_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("min_principal", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("max_principal", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("min_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("max_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("default_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("min_installments", sa.Integer(), nullable=False),
        sa.Column("max_installments", sa.Integer(), nullable=False),
        sa.Column("microfinance", sa.Boolean(), nullable=False),
        sa.Column("max_obligation_ratio", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "min_installments >= 1 AND min_installments <= max_installments",
            name=op.f("ck_loan_product_versions_installments_range"),
        ),
        sa.CheckConstraint(
            "min_principal > 0 AND min_principal <= max_principal",
            name=op.f("ck_loan_product_versions_principal_range"),
        ),
        sa.CheckConstraint(
            "min_rate >= 0 AND min_rate <= max_rate AND max_rate <= 100",
            name=op.f("ck_loan_product_versions_rate_range"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_loan_product_versions_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["loan_products.id"],
            name=op.f("fk_loan_product_versions_product_id_loan_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_product_versions")),
        sa.UniqueConstraint(
            "product_id", "version", name=op.f("uq_loan_product_versions_product_id_version")
        ),
    )
    op.create_index(
        op.f("ix_loan_product_versions_product_id"),
        "loan_product_versions",
        ["product_id"],
        unique=False,
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("loan_number", sa.String(length=40), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("product_version_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "applied",
                "approved",
                "rejected",
                "withdrawn",
                "active",
                "closed",
                "preclosed",
                "refinanced",
                "written_off",
                name="loan_status",
            ),
            nullable=False,
        ),
        sa.Column("principal", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("annual_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("installments", sa.Integer(), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("requested_first_due_on", sa.Date(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("applied_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disbursed_by_id", sa.Uuid(), nullable=True),
        sa.Column("disbursed_on", sa.Date(), nullable=True),
        sa.Column("disbursed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "disbursement_method",
            sa.Enum("cash", "bank_transfer", "upi", name="disbursement_method"),
            nullable=True,
        ),
        sa.Column("disbursement_reference", sa.String(length=100), nullable=True),
        sa.Column("net_disbursed", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.Column("installment_amount", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.Column("total_interest", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.Column("apr_percent", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column(
            "schedule_status",
            sa.Enum("none", "pending", "generated", name="schedule_status"),
            server_default="none",
            nullable=False,
        ),
        sa.Column(
            "outstanding_principal",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "outstanding_interest",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "outstanding_fees",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "outstanding_penalties",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "total_collected", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column("next_due_on", sa.Date(), nullable=True),
        sa.Column("days_past_due", sa.Integer(), server_default="0", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("written_off_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("write_off_reason", sa.Text(), nullable=True),
        sa.Column("refinances_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("installments >= 1", name=op.f("ck_loans_installments_positive")),
        sa.CheckConstraint(
            "outstanding_principal >= 0 AND outstanding_interest >= 0 AND outstanding_fees >= 0 AND outstanding_penalties >= 0",
            name=op.f("ck_loans_outstanding_not_negative"),
        ),
        sa.CheckConstraint("principal > 0", name=op.f("ck_loans_principal_positive")),
        sa.ForeignKeyConstraint(
            ["applied_by_id"],
            ["users.id"],
            name=op.f("fk_loans_applied_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_loans_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_loans_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_loans_decided_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["disbursed_by_id"],
            ["users.id"],
            name=op.f("fk_loans_disbursed_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["product_version_id"],
            ["loan_product_versions.id"],
            name=op.f("fk_loans_product_version_id_loan_product_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["refinances_id"],
            ["loans.id"],
            name=op.f("fk_loans_refinances_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
        sa.UniqueConstraint("loan_number", name=op.f("uq_loans_loan_number")),
    )
    op.create_index("ix_loans_branch_id_status", "loans", ["branch_id", "status"], unique=False)
    op.create_index(op.f("ix_loans_customer_id"), "loans", ["customer_id"], unique=False)
    op.create_index(op.f("ix_loans_status"), "loans", ["status"], unique=False)
    op.create_index(op.f("ix_loans_refinances_id"), "loans", ["refinances_id"], unique=False)
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column(
            "posted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("branch_id", sa.Uuid(), nullable=True),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.Column("reverses_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_journal_entries_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_journal_entries_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_journal_entries_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_reverses_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_journal_entries_reverses_id")),
    )
    op.create_index(
        op.f("ix_journal_entries_branch_id"), "journal_entries", ["branch_id"], unique=False
    )
    op.create_index(
        op.f("ix_journal_entries_entry_date"), "journal_entries", ["entry_date"], unique=False
    )
    op.create_index(op.f("ix_journal_entries_kind"), "journal_entries", ["kind"], unique=False)
    op.create_index(
        op.f("ix_journal_entries_loan_id"), "journal_entries", ["loan_id"], unique=False
    )
    op.create_table(
        "loan_charges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("timing", sa.String(length=30), nullable=False),
        sa.Column("basis", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_loan_charges_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_charges")),
    )
    op.create_index(op.f("ix_loan_charges_loan_id"), "loan_charges", ["loan_id"], unique=False)
    op.create_table(
        "loan_installments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("principal_due", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("interest_due", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("fee_due", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False),
        sa.Column(
            "penalty_due", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column("interest_for_period", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column(
            "principal_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "interest_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "fee_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "penalty_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "interest_waived", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "fee_waived", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "penalty_waived", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum("due", "partly_paid", "paid", "overdue", name="installment_status"),
            nullable=False,
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_loan_installments_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_installments")),
        sa.UniqueConstraint("loan_id", "number", name=op.f("uq_loan_installments_loan_id_number")),
    )
    op.create_index(
        "ix_loan_installments_due_date_status",
        "loan_installments",
        ["due_date", "status"],
        unique=False,
    )
    op.create_table(
        "journal_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("debit", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False),
        sa.Column("credit", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)",
            name=op.f("ck_journal_lines_one_side_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_journal_lines_account_id_ledger_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_lines_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_journal_lines_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_lines")),
    )
    op.create_index(
        "ix_journal_lines_account_id_entry_id",
        "journal_lines",
        ["account_id", "entry_id"],
        unique=False,
    )
    op.create_index(op.f("ix_journal_lines_entry_id"), "journal_lines", ["entry_id"], unique=False)
    op.create_index(op.f("ix_journal_lines_loan_id"), "journal_lines", ["loan_id"], unique=False)
    # add_column does not create enum types by itself.
    for enum_type in _CUSTOMER_ENUMS:
        enum_type.create(op.get_bind(), checkfirst=True)
    op.add_column("customers", sa.Column("email", sa.String(length=254), nullable=True))
    op.add_column("customers", sa.Column("date_of_birth", sa.Date(), nullable=True))
    op.add_column("customers", sa.Column("address", sa.Text(), nullable=True))
    op.add_column(
        "customers",
        sa.Column("household_monthly_income", sa.Numeric(precision=20, scale=2), nullable=True),
    )
    op.add_column(
        "customers",
        sa.Column(
            "kyc_document_type",
            sa.Enum(
                "aadhaar",
                "pan",
                "voter_id",
                "passport",
                "driving_licence",
                "ration_card",
                name="kyc_document_type",
            ),
            nullable=True,
        ),
    )
    op.add_column("customers", sa.Column("kyc_number_masked", sa.String(length=40), nullable=True))
    op.add_column("customers", sa.Column("kyc_number_hash", sa.String(length=64), nullable=True))
    op.add_column(
        "customers",
        sa.Column(
            "kyc_status",
            sa.Enum("pending", "verified", "rejected", name="kyc_status"),
            server_default="pending",
            nullable=False,
        ),
    )
    op.add_column("customers", sa.Column("kyc_decided_by_id", sa.Uuid(), nullable=True))
    op.add_column(
        "customers", sa.Column("kyc_decided_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("customers", sa.Column("kyc_rejection_reason", sa.Text(), nullable=True))
    op.add_column(
        "customers",
        sa.Column(
            "status",
            sa.Enum("active", "closed", name="customer_status"),
            server_default="active",
            nullable=False,
        ),
    )
    op.add_column("customers", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("customers", sa.Column("closed_by_id", sa.Uuid(), nullable=True))
    op.add_column("customers", sa.Column("closed_reason", sa.Text(), nullable=True))
    op.create_index("ix_customers_name_id", "customers", ["name", "id"], unique=False)
    op.create_index(
        "uq_customers_kyc_document",
        "customers",
        ["kyc_document_type", "kyc_number_hash"],
        unique=True,
        postgresql_where=sa.text("kyc_number_hash IS NOT NULL"),
    )
    op.create_foreign_key(
        op.f("fk_customers_kyc_decided_by_id_users"),
        "customers",
        "users",
        ["kyc_decided_by_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        op.f("fk_customers_closed_by_id_users"),
        "customers",
        "users",
        ["closed_by_id"],
        ["id"],
        ondelete="SET NULL",
    )

    op.execute(LEDGER_TRIGGERS)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER journal_lines_append_only ON journal_lines;"
        "DROP TRIGGER journal_entries_append_only ON journal_entries;"
        "DROP TRIGGER journal_lines_balance ON journal_lines;"
        "DROP TRIGGER journal_entries_have_lines ON journal_entries;"
        "DROP FUNCTION ledger_refuse_change(); DROP FUNCTION journal_entry_must_balance();"
    )
    op.drop_constraint(op.f("fk_customers_closed_by_id_users"), "customers", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_customers_kyc_decided_by_id_users"), "customers", type_="foreignkey"
    )
    op.drop_index(
        "uq_customers_kyc_document",
        table_name="customers",
        postgresql_where=sa.text("kyc_number_hash IS NOT NULL"),
    )
    op.drop_index("ix_customers_name_id", table_name="customers")
    op.drop_column("customers", "closed_reason")
    op.drop_column("customers", "closed_by_id")
    op.drop_column("customers", "closed_at")
    op.drop_column("customers", "status")
    op.drop_column("customers", "kyc_rejection_reason")
    op.drop_column("customers", "kyc_decided_at")
    op.drop_column("customers", "kyc_decided_by_id")
    op.drop_column("customers", "kyc_status")
    op.drop_column("customers", "kyc_number_hash")
    op.drop_column("customers", "kyc_number_masked")
    op.drop_column("customers", "kyc_document_type")
    op.drop_column("customers", "household_monthly_income")
    op.drop_column("customers", "address")
    op.drop_column("customers", "date_of_birth")
    op.drop_column("customers", "email")
    op.drop_index(op.f("ix_journal_lines_loan_id"), table_name="journal_lines")
    op.drop_index(op.f("ix_journal_lines_entry_id"), table_name="journal_lines")
    op.drop_index("ix_journal_lines_account_id_entry_id", table_name="journal_lines")
    op.drop_table("journal_lines")
    op.drop_index("ix_loan_installments_due_date_status", table_name="loan_installments")
    op.drop_table("loan_installments")
    op.drop_index(op.f("ix_loan_charges_loan_id"), table_name="loan_charges")
    op.drop_table("loan_charges")
    op.drop_index(op.f("ix_journal_entries_loan_id"), table_name="journal_entries")
    op.drop_index(op.f("ix_journal_entries_kind"), table_name="journal_entries")
    op.drop_index(op.f("ix_journal_entries_entry_date"), table_name="journal_entries")
    op.drop_index(op.f("ix_journal_entries_branch_id"), table_name="journal_entries")
    op.drop_table("journal_entries")
    op.drop_index(op.f("ix_loans_refinances_id"), table_name="loans")
    op.drop_index(op.f("ix_loans_status"), table_name="loans")
    op.drop_index(op.f("ix_loans_customer_id"), table_name="loans")
    op.drop_index("ix_loans_branch_id_status", table_name="loans")
    op.drop_table("loans")
    op.drop_index(op.f("ix_loan_product_versions_product_id"), table_name="loan_product_versions")
    op.drop_table("loan_product_versions")
    op.drop_index(
        "uq_ledger_accounts_kind_branch_agent",
        table_name="ledger_accounts",
        postgresql_nulls_not_distinct=True,
    )
    op.drop_table("ledger_accounts")
    op.drop_table("number_sequences")
    op.drop_table("loan_products")
    for enum_type in _CUSTOMER_ENUMS:
        enum_type.drop(op.get_bind(), checkfirst=True)
    for name in _TYPES_CREATED_WITH_TABLES:
        op.execute(f"DROP TYPE IF EXISTS {name}")
