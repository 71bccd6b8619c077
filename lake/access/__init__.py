"""Who may read which dataset, and the audit trail of every access.

:class:`AccessStore` keeps principals (model teams, data engineers, plants) with their tokens
as salted scrypt hashes and their per-dataset grants; :class:`AuditLog` appends one row per
access, allowed or denied, to the Delta table ``ops/audit``; :func:`check_read` is the one
decision both ``maxlake datasets pull`` and the dataset service apply.
"""

from lake.access.audit import AUDIT, AUDIT_SCHEMA, OUTCOMES, AuditEntry, AuditLog
from lake.access.decide import Decision, access_dir, check_read
from lake.access.errors import AccessDenied, PrincipalError
from lake.access.principals import PRINCIPAL_KINDS, PRINCIPAL_PATTERN, AccessStore, Principal
from lake.access.tokens import ProfileToken, TokenStore

__all__ = [
    "AUDIT",
    "AUDIT_SCHEMA",
    "OUTCOMES",
    "PRINCIPAL_KINDS",
    "PRINCIPAL_PATTERN",
    "AccessDenied",
    "AccessStore",
    "AuditEntry",
    "AuditLog",
    "Decision",
    "Principal",
    "PrincipalError",
    "ProfileToken",
    "TokenStore",
    "access_dir",
    "check_read",
]
