"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from namma.models.audit import AuditEntry
from namma.models.user import Role, User

__all__ = ["AuditEntry", "Role", "User"]
