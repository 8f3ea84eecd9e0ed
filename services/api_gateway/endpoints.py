"""The Queue API endpoints this gateway serves: name, method, route, scope
expression and inputs as in the v1 API reference, and the handler."""

from . import artifacts as a
from . import handlers as h
from . import workers as w
from .routing import Endpoint

PAGED = ("continuationToken", "limit")
PROVISIONER = "/provisioners/<provisionerId>"
WORKER_TYPE = PROVISIONER + "/worker-types/<workerType>"


def _scheduler_scopes(verb: str) -> dict:
    return {"AnyOf": [f"queue:{verb}:<schedulerId>/<taskGroupId>/<taskId>", f"queue:{verb}-in-project:<projectId>",
                      {"AllOf": [f"queue:{verb}", "assume:scheduler-id:<schedulerId>/<taskGroupId>"]}]}


GET_ARTIFACT_SCOPES = {"AllOf": [{"for": "name", "in": "names", "each": "queue:get-artifact:<name>"}]}
CREATE_TASK_SCOPES = {"AllOf": [
    {"for": "scope", "in": "scopes", "each": "<scope>"},
    {"for": "route", "in": "routes", "each": "queue:route:<route>"},
    "queue:create-task:project:<projectId>",
    "queue:scheduler-id:<schedulerId>",
    {"AnyOf": [{"for": "priority", "in": "priorities", "each": "queue:create-task:<priority>:<provisionerId>/<workerType>"}]},
]}

ENDPOINTS = [
    Endpoint("ping", "GET", "/ping", h.ping),
    Endpoint("lbheartbeat", "GET", "/__lbheartbeat__", h.empty),
    Endpoint("version", "GET", "/__version__", h.version),
    Endpoint("heartbeat", "GET", "/__heartbeat__", h.empty),
    Endpoint("task", "GET", "/task/<taskId>", h.task, "queue:get-task:<taskId>"),
    Endpoint("tasks", "POST", "/tasks", h.tasks,
             {"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:get-task:<taskId>"}]}, PAGED, "tasks-request"),
    Endpoint("statuses", "POST", "/tasks/status", h.statuses,
             {"AllOf": [{"for": "taskId", "in": "taskIds", "each": "queue:status:<taskId>"}]}, PAGED, "tasks-request"),
    Endpoint("status", "GET", "/task/<taskId>/status", h.status, "queue:status:<taskId>"),
    Endpoint("listTaskGroup", "GET", "/task-group/<taskGroupId>/list", h.list_task_group,
             "queue:list-task-group:<taskGroupId>", PAGED),
    Endpoint("cancelTaskGroup", "POST", "/task-group/<taskGroupId>/cancel", h.cancel_task_group,
             "queue:cancel-task-group:<schedulerId>/<taskGroupId>"),
    Endpoint("getTaskGroup", "GET", "/task-group/<taskGroupId>", h.get_task_group, "queue:list-task-group:<taskGroupId>"),
    Endpoint("sealTaskGroup", "POST", "/task-group/<taskGroupId>/seal", h.seal_task_group,
             "queue:seal-task-group:<schedulerId>/<taskGroupId>"),
    Endpoint("listDependentTasks", "GET", "/task/<taskId>/dependents", h.list_dependent_tasks,
             "queue:list-dependent-tasks:<taskId>", PAGED),
    Endpoint("createTask", "PUT", "/task/<taskId>", h.create_task, CREATE_TASK_SCOPES, (), "create-task-request"),
    Endpoint("scheduleTask", "POST", "/task/<taskId>/schedule", h.schedule_task, _scheduler_scopes("schedule-task")),
    Endpoint("rerunTask", "POST", "/task/<taskId>/rerun", h.rerun_task, _scheduler_scopes("rerun-task")),
    Endpoint("cancelTask", "POST", "/task/<taskId>/cancel", h.cancel_task, _scheduler_scopes("cancel-task")),
    Endpoint("claimWork", "POST", "/claim-work/<taskQueueId>", h.claim_work,
             {"AllOf": ["queue:claim-work:<taskQueueId>", "queue:worker-id:<workerGroup>/<workerId>"]}, (),
             "claim-work-request"),
    Endpoint("claimTask", "POST", "/task/<taskId>/runs/<runId>/claim", h.claim_task,
             {"AllOf": ["queue:claim-task:<provisionerId>/<workerType>", "queue:worker-id:<workerGroup>/<workerId>"]},
             (), "task-claim-request"),
    Endpoint("reclaimTask", "POST", "/task/<taskId>/runs/<runId>/reclaim", h.reclaim_task,
             "queue:reclaim-task:<taskId>/<runId>"),
    Endpoint("reportCompleted", "POST", "/task/<taskId>/runs/<runId>/completed", h.report_completed,
             "queue:resolve-task:<taskId>/<runId>"),
    Endpoint("reportFailed", "POST", "/task/<taskId>/runs/<runId>/failed", h.report_failed,
             "queue:resolve-task:<taskId>/<runId>"),
    Endpoint("reportException", "POST", "/task/<taskId>/runs/<runId>/exception", h.report_exception,
             "queue:resolve-task:<taskId>/<runId>", (), "task-exception-request"),
    Endpoint("pendingTasks", "GET", "/pending/<taskQueueId>", h.pending_tasks, "queue:pending-count:<taskQueueId>"),
    # upstream v95.1.0
    Endpoint("changeTaskPriority", "POST", "/task/<taskId>/priority", h.change_task_priority,
             {"AnyOf": ["queue:change-task-priority:<taskId>", "queue:change-task-priority-in-queue:<taskQueueId>"]},
             (), "change-task-priority-request"),
    Endpoint("changeTaskGroupPriority", "POST", "/task-group/<taskGroupId>/priority", h.change_task_group_priority,
             "queue:change-task-group-priority:<schedulerId>/<taskGroupId>", (), "change-task-priority-request"),
    # upstream v72.0.0
    Endpoint("taskQueueCounts", "GET", "/task-queues/<taskQueueId>/counts", h.task_queue_counts,
             {"AllOf": ["queue:pending-count:<taskQueueId>", "queue:claimed-count:<taskQueueId>"]}),
    Endpoint("listPendingTasks", "GET", "/task-queues/<taskQueueId>/pending", h.list_pending_tasks,
             "queue:pending-list:<taskQueueId>", PAGED),
    Endpoint("listClaimedTasks", "GET", "/task-queues/<taskQueueId>/claimed", h.list_claimed_tasks,
             "queue:claimed-list:<taskQueueId>", PAGED),
    # provisioners, worker types, task queues and workers (behaviour spec §7.33-§7.47; handlers in workers.py)
    Endpoint("listProvisioners", "GET", "/provisioners", w.list_provisioners, "queue:list-provisioners", PAGED),
    Endpoint("getProvisioner", "GET", PROVISIONER, w.get_provisioner, "queue:get-provisioner:<provisionerId>"),
    Endpoint("declareProvisioner", "PUT", PROVISIONER, w.declare_provisioner,
             {"AllOf": [{"for": "property", "in": "properties",
                         "each": "queue:declare-provisioner:<provisionerId>#<property>"}]},
             (), "update-provisioner-request"),
    Endpoint("listWorkerTypes", "GET", PROVISIONER + "/worker-types", w.list_worker_types,
             "queue:list-worker-types:<provisionerId>", PAGED),
    Endpoint("getWorkerType", "GET", WORKER_TYPE, w.get_worker_type,
             "queue:get-worker-type:<provisionerId>/<workerType>"),
    Endpoint("declareWorkerType", "PUT", WORKER_TYPE, w.declare_worker_type,
             {"AllOf": [{"for": "property", "in": "properties",
                         "each": "queue:declare-worker-type:<provisionerId>/<workerType>#<property>"}]},
             (), "update-workertype-request"),
    Endpoint("listTaskQueues", "GET", "/task-queues", w.list_task_queues, "queue:list-task-queues", PAGED),
    Endpoint("getTaskQueue", "GET", "/task-queues/<taskQueueId>", w.get_task_queue,
             "queue:get-task-queue:<taskQueueId>", rest=False),
    Endpoint("listWorkers", "GET", WORKER_TYPE + "/workers", w.list_workers,
             "queue:list-workers:<provisionerId>/<workerType>", (*PAGED, "quarantined")),
    Endpoint("getWorker", "GET", WORKER_TYPE + "/workers/<workerGroup>/<workerId>", w.get_worker,
             "queue:get-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>"),
    Endpoint("quarantineWorker", "PUT", WORKER_TYPE + "/workers/<workerGroup>/<workerId>", w.quarantine_worker,
             {"AllOf": ["queue:quarantine-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>"]},
             (), "quarantine-worker-request"),
    Endpoint("declareWorker", "PUT", WORKER_TYPE + "/<workerGroup>/<workerId>", w.declare_worker,
             {"AllOf": [{"for": "property", "in": "properties",
                         "each": "queue:declare-worker:<provisionerId>/<workerType>/<workerGroup>/<workerId>#<property>"}]},
             (), "update-worker-request"),
    # artifacts (behaviour spec §8; handlers in artifacts.py)
    Endpoint("createArtifact", "POST", "/task/<taskId>/runs/<runId>/artifacts/<name>", a.create_artifact,
             "queue:create-artifact:<taskId>/<runId>", (), "post-artifact-request"),
    Endpoint("finishArtifact", "PUT", "/task/<taskId>/runs/<runId>/artifacts/<name>", a.finish_artifact,
             "queue:create-artifact:<taskId>/<runId>", (), "finish-artifact-request"),
    Endpoint("getArtifact", "GET", "/task/<taskId>/runs/<runId>/artifacts/<name>", a.get_artifact,
             GET_ARTIFACT_SCOPES),
    Endpoint("getLatestArtifact", "GET", "/task/<taskId>/artifacts/<name>", a.get_latest_artifact,
             GET_ARTIFACT_SCOPES),
    Endpoint("listArtifacts", "GET", "/task/<taskId>/runs/<runId>/artifacts", a.list_artifacts,
             "queue:list-artifacts:<taskId>:<runId>", PAGED),
    Endpoint("listLatestArtifacts", "GET", "/task/<taskId>/artifacts", a.list_latest_artifacts,
             "queue:list-artifacts:<taskId>", PAGED),
    Endpoint("artifactInfo", "GET", "/task/<taskId>/runs/<runId>/artifact-info/<name>", a.artifact_info,
             "queue:list-artifacts:<taskId>:<runId>"),
    Endpoint("latestArtifactInfo", "GET", "/task/<taskId>/artifact-info/<name>", a.latest_artifact_info,
             "queue:list-artifacts:<taskId>"),
    Endpoint("artifact", "GET", "/task/<taskId>/runs/<runId>/artifact-content/<name>", a.artifact,
             GET_ARTIFACT_SCOPES),
    Endpoint("latestArtifact", "GET", "/task/<taskId>/artifact-content/<name>", a.latest_artifact,
             GET_ARTIFACT_SCOPES),
]
