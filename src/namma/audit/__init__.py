"""The tamper-evident audit log: record entries in the caller's transaction, list, verify."""

from namma.audit.queries import audit_list
from namma.audit.service import AuditActor, AuditVerifyResult, audit_record, audit_verify

__all__ = ["AuditActor", "AuditVerifyResult", "audit_list", "audit_record", "audit_verify"]
