"""Authentication and authorization core: Hawk, temporary credentials, scopes."""

from .clients import Client, ClientStore, load_config_file
from .credentials import (
    certificate_signature,
    create_temporary_credentials,
    slug_id,
    temporary_access_token,
)
from .hawk import (
    ANONYMOUS_SCOPE,
    AuthenticationFailure,
    Authenticator,
    AuthRequest,
    AuthResult,
    host_and_port,
    payload_hash,
)
from .scopes import (
    Roles,
    ScopeSet,
    TemplateError,
    insufficient_scopes_message,
    is_valid_scope,
    normalize,
    render,
    satisfies,
    scope_satisfied,
    template_params,
    unsatisfied,
)

__all__ = [
    "ANONYMOUS_SCOPE",
    "AuthRequest",
    "AuthResult",
    "AuthenticationFailure",
    "Authenticator",
    "Client",
    "ClientStore",
    "Roles",
    "ScopeSet",
    "TemplateError",
    "certificate_signature",
    "create_temporary_credentials",
    "host_and_port",
    "insufficient_scopes_message",
    "is_valid_scope",
    "load_config_file",
    "normalize",
    "payload_hash",
    "render",
    "satisfies",
    "scope_satisfied",
    "slug_id",
    "template_params",
    "temporary_access_token",
    "unsatisfied",
]
