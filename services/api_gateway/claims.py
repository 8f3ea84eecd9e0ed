"""Claim and reclaim replies, with the temporary credentials a run's worker
uses to reclaim, resolve and (later) upload artifacts for that run only."""

from taskjournal.shared.auth.credentials import create_temporary_credentials
from taskjournal.shared.domain.time import parse_ms

from .responses import dumps


def run_credentials(services, task, run: dict) -> dict:
    taken_until = parse_ms(run["takenUntil"])
    task_id, run_id = task.task_id, run["runId"]
    until = f"{taken_until / 1000:.3f}".rstrip("0").rstrip(".")  # as JavaScript prints ms / 1000
    client_id = f"task-client/{task_id}/{run_id}/on/{run['workerGroup']}/{run['workerId']}/until/{until}"
    scopes = [f"queue:reclaim-task:{task_id}/{run_id}", f"queue:resolve-task:{task_id}/{run_id}",
              f"queue:create-artifact:{task_id}/{run_id}", *task.definition["scopes"]]
    issuer = services.issuer
    return create_temporary_credentials(issuer.client_id, issuer.access_token, services.clock(), taken_until,
                                        scopes, name=client_id)


def claim_body(services, task, run_id: int | None = None) -> dict:
    run = task.runs[task.last_run["runId"] if run_id is None else run_id]
    return {"status": task.status(), "runId": run["runId"], "workerGroup": run["workerGroup"],
            "workerId": run["workerId"], "takenUntil": run["takenUntil"], "task": task.public_body(),
            "credentials": run_credentials(services, task, run)}


def claim_reply(services, task) -> bytes | None:
    """claimWork's entry for a claimed task as JSON, or None when it cannot be
    written (the task is then resolved instead of claimed, see Journal.claim_work)."""
    try:
        return dumps(claim_body(services, task))
    except (TypeError, ValueError, RecursionError):  # what JSON encoders raise for data they cannot write
        return None


def reclaim_body(services, task, run_id: int) -> dict:
    run = task.runs[run_id]
    return {"status": task.status(), "runId": run_id, "workerGroup": run["workerGroup"],
            "workerId": run["workerId"], "takenUntil": run["takenUntil"],
            "credentials": run_credentials(services, task, run)}
