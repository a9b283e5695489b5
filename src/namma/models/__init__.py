"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from namma.models.audit import AuditEntry
from namma.models.auth import RecoveryCode, RefreshToken
from namma.models.branch import Branch
from namma.models.capital import (
    Borrowing,
    BorrowingInstallment,
    BorrowingRepayment,
    BorrowingStatus,
    CapitalMethod,
    Investment,
)
from namma.models.collection import (
    Collection,
    CollectionAllocation,
    CollectionMethod,
    CollectionStatus,
    IdempotencyKey,
)
from namma.models.customer import (
    AgentAssignment,
    Customer,
    CustomerStatus,
    KycDocumentType,
    KycStatus,
)
from namma.models.handover import CashHandover
from namma.models.ledger import AccountKind, AccountType, JournalEntry, JournalLine, LedgerAccount
from namma.models.loan import (
    DisbursementMethod,
    InstallmentStatus,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanStatus,
    NumberSequence,
    ScheduleStatus,
)
from namma.models.product import LoanProduct, LoanProductVersion
from namma.models.user import Role, User, UserPermission

__all__ = [
    "AccountKind",
    "AccountType",
    "AgentAssignment",
    "AuditEntry",
    "Borrowing",
    "BorrowingInstallment",
    "BorrowingRepayment",
    "BorrowingStatus",
    "Branch",
    "CapitalMethod",
    "CashHandover",
    "Collection",
    "CollectionAllocation",
    "CollectionMethod",
    "CollectionStatus",
    "Customer",
    "CustomerStatus",
    "DisbursementMethod",
    "IdempotencyKey",
    "InstallmentStatus",
    "Investment",
    "JournalEntry",
    "JournalLine",
    "KycDocumentType",
    "KycStatus",
    "LedgerAccount",
    "Loan",
    "LoanCharge",
    "LoanInstallment",
    "LoanProduct",
    "LoanProductVersion",
    "LoanStatus",
    "NumberSequence",
    "RecoveryCode",
    "RefreshToken",
    "Role",
    "ScheduleStatus",
    "User",
    "UserPermission",
]
