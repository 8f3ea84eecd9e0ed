"""Rejections the domain decides. Each names its kind with Taskcluster's error
code; how a kind is answered over HTTP is the gateway's business
(services/api_gateway/errors.py)."""


class DomainError(Exception):
    code = "InternalServerError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InputError(DomainError):
    code = "InputError"


class ResourceNotFound(DomainError):
    code = "ResourceNotFound"


class RequestConflict(DomainError):
    code = "RequestConflict"


class ResourceExpired(DomainError):
    code = "ResourceExpired"
