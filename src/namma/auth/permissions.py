"""What each role may do. Routes check a ``Permission``; scope (which records) is checked in the
query, see ``namma.auth.scope``."""

from __future__ import annotations

import enum

from namma.models import Role


class Permission(enum.StrEnum):
    # Own account (every logged-in user).
    SELF = "self"
    # Branches.
    BRANCH_READ = "branch:read"
    BRANCH_MANAGE = "branch:manage"
    # Staff.
    STAFF_READ = "staff:read"
    STAFF_CREATE = "staff:create"
    STAFF_MANAGE = "staff:manage"  # deactivate, reactivate, reset password
    STAFF_CHANGE_ROLE = "staff:change_role"
    STAFF_GRANT = "staff:grant"  # grant / revoke extra permissions
    # Customers and who serves them.
    CUSTOMER_READ = "customer:read"
    CUSTOMER_CREATE = "customer:create"
    CUSTOMER_UPDATE = "customer:update"
    CUSTOMER_KYC_DECIDE = "customer:kyc_decide"
    CUSTOMER_ASSIGN = "customer:assign"
    # Loan products.
    PRODUCT_READ = "product:read"
    PRODUCT_MANAGE = "product:manage"
    # Loans: each transition its own permission.
    LOAN_READ = "loan:read"
    LOAN_APPLY = "loan:apply"
    LOAN_WITHDRAW = "loan:withdraw"
    LOAN_DECIDE = "loan:decide"  # approve, reject, undo an approval
    LOAN_DISBURSE = "loan:disburse"
    LOAN_WRITE_OFF = "loan:write_off"
    # Ask for a loan's (or a village's loans') restructuring; another officer with
    # `loan:decide` approves it (maker-checker).
    LOAN_RESTRUCTURE = "loan:restructure"
    # Ledger.
    LEDGER_READ = "ledger:read"
    # Audit log.
    AUDIT_READ = "audit:read"
    # Collections (repayments).
    COLLECTION_READ = "collection:read"
    COLLECTION_RECORD = "collection:record"
    # Agents' cash hand-overs at the branch.
    HANDOVER_READ = "cash_handover:read"
    HANDOVER_RECORD = "cash_handover:record"
    # Capital: owners' investments and borrowings (a head-office matter: admin only).
    CAPITAL_READ = "capital:read"
    CAPITAL_MANAGE = "capital:manage"
    # Extra grants for managers (the origin's "may delete …" flags, as reversals and closures).
    COLLECTION_REVERSE = "collection:reverse"
    CUSTOMER_CLOSE = "customer:close"
    # Servicing: waive penalties, fees or interest (with a reason; posted to the ledger).
    LOAN_WAIVE = "loan:waive"
    # Agents' cash hand-overs: reverse one so a corrected one can follow.
    HANDOVER_REVERSE = "cash_handover:reverse"
    # The branch's count of a declared hand-over (never by its declarer).
    HANDOVER_COUNT = "cash_handover:count"
    # Close of business: run it for a date by hand (it also runs nightly), see its runs.
    COB_RUN = "cob:run"
    COB_READ = "cob:read"
    # Provisioning rates per prudential class (reading them is `report:read`): Admin.
    PROVISIONING_MANAGE = "provisioning:manage"
    # Portfolio reports and dashboards (Admin: all branches; Manager: their branch).
    REPORT_READ = "report:read"
    DASHBOARD_READ = "dashboard:read"
    # Statements and receipts as PDF (customers: their own; staff: in scope).
    DOCUMENT_READ = "document:read"
    # Messages sent to customers (reminders, receipts, notices) and their delivery status.
    NOTIFICATION_READ = "notification:read"
    # Working calendars: holidays and non-working weekdays (the institution's: Admin only; a
    # branch's: the Admin or that branch's Manager — checked by the service).
    CALENDAR_READ = "calendar:read"
    CALENDAR_MANAGE = "calendar:manage"


_STAFF_COMMON = {
    Permission.SELF,
    Permission.BRANCH_READ,
    Permission.CUSTOMER_READ,
    Permission.CUSTOMER_CREATE,
    Permission.CUSTOMER_UPDATE,
    Permission.PRODUCT_READ,
    Permission.LOAN_READ,
    Permission.LOAN_APPLY,
    Permission.LOAN_WITHDRAW,
    Permission.COLLECTION_READ,
    Permission.COLLECTION_RECORD,
    Permission.HANDOVER_READ,
    Permission.HANDOVER_RECORD,
    Permission.DASHBOARD_READ,
    Permission.DOCUMENT_READ,
    Permission.NOTIFICATION_READ,
    Permission.CALENDAR_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: frozenset(
        _STAFF_COMMON
        | {
            Permission.STAFF_READ,
            Permission.STAFF_CREATE,
            Permission.STAFF_MANAGE,
            Permission.CUSTOMER_ASSIGN,
            Permission.CUSTOMER_KYC_DECIDE,
            Permission.LOAN_DECIDE,
            Permission.LOAN_DISBURSE,
            Permission.LEDGER_READ,
            Permission.LOAN_WAIVE,
            Permission.LOAN_RESTRUCTURE,
            Permission.HANDOVER_REVERSE,
            Permission.HANDOVER_COUNT,
            Permission.REPORT_READ,
            Permission.COB_READ,
            Permission.CALENDAR_MANAGE,
        }
    ),
    Role.AGENT: frozenset(_STAFF_COMMON),
    # Customers read their own records (scope keeps them to themselves); they never record
    # collections (the original app let them).
    Role.CUSTOMER: frozenset(
        {
            Permission.SELF,
            Permission.CUSTOMER_READ,
            Permission.LOAN_READ,
            Permission.COLLECTION_READ,
            Permission.DASHBOARD_READ,
            Permission.DOCUMENT_READ,
            Permission.NOTIFICATION_READ,
        }
    ),
}

# What an Admin may grant on top of a role (never admin-only powers to non-admins).
GRANTABLE: dict[Role, frozenset[Permission]] = {
    Role.MANAGER: frozenset(
        {
            Permission.COLLECTION_REVERSE,
            Permission.CUSTOMER_CLOSE,
            Permission.AUDIT_READ,
            Permission.LOAN_WRITE_OFF,
        }
    ),
    Role.AGENT: frozenset(),
    Role.ADMIN: frozenset(),
    Role.CUSTOMER: frozenset(),
}


def permissions_for(
    role: Role, granted: set[str] | frozenset[str] = frozenset()
) -> frozenset[Permission]:
    known = {p.value for p in Permission}
    extra = {Permission(p) for p in granted if p in known}
    return ROLE_PERMISSIONS[role] | (extra & GRANTABLE[role])
