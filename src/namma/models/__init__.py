"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from namma.models.audit import AuditEntry
from namma.models.auth import RecoveryCode, RefreshToken
from namma.models.branch import Branch
from namma.models.calendar import Holiday, WorkingWeek
from namma.models.capital import (
    Borrowing,
    BorrowingInstallment,
    BorrowingRepayment,
    BorrowingStatus,
    CapitalMethod,
    Investment,
)
from namma.models.cob import (
    AssetClass,
    CobRun,
    CobRunStatus,
    DpdBucket,
    PortfolioSnapshot,
    ProvisionClass,
    ProvisioningRate,
)
from namma.models.collection import (
    AdvanceApplication,
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
from namma.models.document import Document, DocumentKind, DocumentStatus
from namma.models.handover import CashHandover
from namma.models.ledger import AccountKind, AccountType, JournalEntry, JournalLine, LedgerAccount
from namma.models.loan import (
    DisbursementMethod,
    InstallmentStatus,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanStatus,
    LoanTermsSnapshot,
    NumberSequence,
)
from namma.models.notification import (
    Language,
    Notification,
    NotificationChannel,
    NotificationStatus,
)
from namma.models.product import LoanProduct, LoanProductVersion
from namma.models.servicing import (
    LoanPenaltyCharge,
    LoanRestructureRequest,
    LoanScheduleRevision,
    LoanWaiver,
    RestructureStatus,
    WaiverComponent,
)
from namma.models.user import Role, User, UserPermission

__all__ = [
    "AccountKind",
    "AccountType",
    "AdvanceApplication",
    "AgentAssignment",
    "AssetClass",
    "AuditEntry",
    "Borrowing",
    "BorrowingInstallment",
    "BorrowingRepayment",
    "BorrowingStatus",
    "Branch",
    "CapitalMethod",
    "CashHandover",
    "CobRun",
    "CobRunStatus",
    "Collection",
    "CollectionAllocation",
    "CollectionMethod",
    "CollectionStatus",
    "Customer",
    "CustomerStatus",
    "DisbursementMethod",
    "Document",
    "DocumentKind",
    "DocumentStatus",
    "DpdBucket",
    "Holiday",
    "IdempotencyKey",
    "InstallmentStatus",
    "Investment",
    "JournalEntry",
    "JournalLine",
    "KycDocumentType",
    "KycStatus",
    "Language",
    "LedgerAccount",
    "Loan",
    "LoanCharge",
    "LoanInstallment",
    "LoanPenaltyCharge",
    "LoanProduct",
    "LoanProductVersion",
    "LoanRestructureRequest",
    "LoanScheduleRevision",
    "LoanStatus",
    "LoanTermsSnapshot",
    "LoanWaiver",
    "Notification",
    "NotificationChannel",
    "NotificationStatus",
    "NumberSequence",
    "PortfolioSnapshot",
    "ProvisionClass",
    "ProvisioningRate",
    "RecoveryCode",
    "RefreshToken",
    "RestructureStatus",
    "Role",
    "User",
    "UserPermission",
    "WaiverComponent",
    "WorkingWeek",
]
