"""Rejections the domain decides; the gateway renders each in Taskcluster's
error format with the matching status and code."""


class DomainError(Exception):
    code = "InternalServerError"
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InputError(DomainError):
    code, status = "InputError", 400


class ResourceNotFound(DomainError):
    code, status = "ResourceNotFound", 404


class RequestConflict(DomainError):
    code, status = "RequestConflict", 409
