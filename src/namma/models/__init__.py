"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from namma.models.audit import AuditEntry
from namma.models.auth import RecoveryCode, RefreshToken
from namma.models.branch import Branch
from namma.models.customer import AgentAssignment, Customer
from namma.models.user import Role, User, UserPermission

__all__ = [
    "AgentAssignment",
    "AuditEntry",
    "Branch",
    "Customer",
    "RecoveryCode",
    "RefreshToken",
    "Role",
    "User",
    "UserPermission",
]
