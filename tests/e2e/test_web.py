"""The web view in a real headless browser (Debian's chromium, driven with
selenium) against the real `taskjournal dev` process; tasks are made with
the official client. Screenshots go to .test-artifacts/screenshots/ (kept by CI)."""

import os
import shutil
import time
from pathlib import Path

import pytest
import requests
import taskcluster

from taskjournal.shared.config import DEFAULT_ANONYMOUS_SCOPES
from tests.support.auth import bewit_url
from tests.support.server import ROOT_CLIENT_ID, Server, task_definition

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "screenshots"
# upstream's public read set, plus the claimed count and history the pages can show
VIEWER_SCOPES = f"{DEFAULT_ANONYMOUS_SCOPES} queue:claimed-count:* journal:task-history:*"
WAIT_S = 20


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the module. In CI a missing browser fails, never skips."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"the web view's browser tests need {', '.join(missing)} (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1024"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    database_url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    srv = Server(tmp_path_factory.mktemp("tj-web"), database_url, TASKJOURNAL_ANONYMOUS_SCOPES=VIEWER_SCOPES)
    yield srv
    srv.stop()


def screenshot(browser, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def wait_for(browser, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_S).until(lambda driver: condition(), message=what)


def css(browser, selector: str):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def counts(browser) -> dict[str, int]:
    """The group page's counts, read in one script: the live page may swap its <main> between two reads."""
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#counts td[data-state]')]"
        ".map(cell => [cell.dataset.state, Number(cell.textContent)]))")


def text(browser, selector: str) -> str | None:
    """The text of the first element matching `selector` (one script, as `counts`)."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e && e.innerText;",
                                  selector)


def listed(browser) -> list[str]:
    """The taskIds of the task list, in order (one script, as `counts`)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#tasks tbody tr')].map(row => row.dataset.taskId)")


def named(name: str, **fields) -> dict:
    metadata = {"name": name, "description": "web view test", "owner": "e2e@example.com",
                "source": "https://example.com/web"}
    return {**fields, "metadata": metadata}


class Group:
    """A task group on a queue of its own, so claimWork takes exactly its tasks."""

    def __init__(self, server: Server):
        self.server, self.root = server, server.queue()
        self.id = taskcluster.slugId()
        self.queue_id = f"web-prov/w{taskcluster.slugId()[:10].lower().replace('-', 'a').replace('_', 'b')}"

    def create(self, name: str, **fields) -> str:
        task_id = taskcluster.slugId()
        self.root.createTask(task_id, task_definition(self.queue_id, taskGroupId=self.id, **named(name, **fields)))
        return task_id

    def claim(self) -> tuple[str, taskcluster.Queue]:
        """Claim the next pending task: (taskId, a queue with its run's credentials)."""
        claim, = self.root.claimWork(self.queue_id, {"workerGroup": "web-group", "workerId": "web-worker",
                                                     "tasks": 1})["tasks"]
        return claim["status"]["taskId"], self.server.queue(claim["credentials"])

    def url(self) -> str:
        return f"{self.server.root_url}/task-groups/{self.id}"


def test_the_group_page_shows_counts_by_state_and_a_bar_for_every_run(server, browser):
    group = Group(server)
    done, failed = group.create("done"), group.create("failed")
    for resolve in ("reportCompleted", "reportFailed"):  # the oldest pending task is claimed first
        task_id, worker = group.claim()
        getattr(worker, resolve)(task_id, "0")
    retried = group.create("retried")  # the worker shuts down, the queue makes run 1, which completes
    task_id, worker = group.claim()
    worker.reportException(retried, "0", {"reason": "worker-shutdown"})
    task_id, worker = group.claim()
    worker.reportCompleted(retried, "1")
    running = group.create("running")
    group.claim()
    pending = group.create("pending")
    blocked = group.create("blocked", dependencies=[pending])

    browser.get(group.url())
    screenshot(browser, f"group-{server.env.get('TASKJOURNAL_DATABASE_URL') and 'postgres' or 'sqlite'}")
    assert counts(browser) == {"all": 6, "unscheduled": 1, "pending": 1, "running": 1, "completed": 2, "failed": 1,
                               "exception": 0}
    assert set(listed(browser)) == \
        {done, failed, retried, running, pending, blocked}
    runs = {(task_id, str(run["runId"])) for task_id in (done, failed, retried, running, pending, blocked)
            for run in group.root.status(task_id)["status"]["runs"]}
    bars = {(bar.get_attribute("data-task-id"), bar.get_attribute("data-run-id"))
            for bar in css(browser, "#timeline a.bar")}
    assert bars == runs and len(runs) == 6  # the retried task has two runs; the blocked one none
    assert len(css(browser, "#timeline a.bar rect.run")) == 5  # every run but the pending one has started

    browser.get(group.url() + "?state=completed")
    assert set(listed(browser)) == {done, retried}
    browser.get(group.url() + "?name=fail")
    assert listed(browser) == [failed]
    assert counts(browser)["all"] == 6  # the counts cover the whole group whatever the filter
    browser.get(group.url() + "?limit=2&offset=2")
    assert listed(browser) == [retried, running]
    assert len(css(browser, "#timeline a.bar")) == 3  # the timeline follows the page: retried's two runs, running's one


def test_a_task_resolving_while_its_group_page_is_open_updates_the_page(server, browser):
    group = Group(server)
    group.create("first")
    group.create("second")
    task_id, worker = group.claim()
    browser.get(group.url())
    wait_for(browser, lambda: css(browser, "#live-status.on"), "the live stream to open")
    browser.execute_script("window.notReloaded = true")
    assert counts(browser)["running"] == 1

    worker.reportCompleted(task_id, "0")
    wait_for(browser, lambda: counts(browser)["completed"] == 1, "the completed count to change")
    assert counts(browser)["running"] == 0
    assert browser.execute_script("return window.notReloaded") is True  # updated in place, not reloaded
    wait_for(browser, lambda: len(css(browser, f"#timeline a.bar[data-task-id='{task_id}'] rect.run.completed")) == 1,
             "the run's bar to show it completed")

    new_task = group.create("third")  # a task joining the group shows up too
    wait_for(browser, lambda: counts(browser)["all"] == 3, "the new task to be counted")
    assert new_task in listed(browser)
    screenshot(browser, "group-live")


def test_the_task_page_shows_definition_runs_and_artifact_links(server, browser):
    group = Group(server)
    group.create("with artifacts", payload={"command": ["make", "check"]})
    task_id, worker = group.claim()
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    upload = worker.createArtifact(task_id, "0", "public/build.log",
                                   {"storageType": "s3", "contentType": "text/plain", "expires": expires})
    requests.put(upload["putUrl"], data=b"the build log\n", headers={"Content-Type": "text/plain"}).raise_for_status()
    worker.createArtifact(task_id, "0", "private/secret.txt",
                          {"storageType": "reference", "url": "https://example.com/s", "contentType": "text/plain",
                           "expires": expires})
    worker.reportCompleted(task_id, "0")

    browser.get(f"{server.root_url}/tasks/{task_id}")
    screenshot(browser, "task")
    definition = text(browser, "#definition")
    assert task_id in browser.page_source and '"make"' in definition and group.id in definition
    assert text(browser, "#state") == "completed"
    assert browser.execute_script(
        "return [...document.querySelectorAll('#runs tbody tr')].map(row => row.dataset.state)") == ["completed"]
    assert len(css(browser, "#timeline a.bar")) == 1
    assert len(css(browser, "#artifacts a.download")) == 1
    assert text(browser, "#artifacts a.download") == "public/build.log"
    private = text(browser, "#artifacts tr[data-name='private/secret.txt']")
    assert "needs queue:get-artifact:private/secret.txt" in private  # listed, but no link without the scope
    # clicked in one script: the live page may have swapped its <main> since the link was found
    browser.execute_script("document.querySelector('#artifacts a.download').click()")  # 303 to the bytes
    wait_for(browser, lambda: "the build log" in browser.page_source, "the artifact's bytes")


def test_a_task_page_follows_its_task_and_a_queue_page_its_counts(server, browser):
    group = Group(server)
    task_id = group.create("watched")
    browser.get(f"{server.root_url}/tasks/{task_id}")
    wait_for(browser, lambda: css(browser, "#live-status.on"), "the task page's live stream to open")
    assert text(browser, "#state") == "pending"
    claimed, worker = group.claim()
    wait_for(browser, lambda: text(browser, "#state") == "running", "the task page to show the claim")
    worker.reportCompleted(claimed, "0")
    wait_for(browser, lambda: text(browser, "#state") == "completed", "the task page to show the resolution")

    browser.get(f"{server.root_url}/task-queues/{group.queue_id}")
    wait_for(browser, lambda: css(browser, "#live-status.on"), "the queue page's live stream to open")
    group.create("queued")
    wait_for(browser, lambda: text(browser, "td[data-count='pending']") == "1", "the pending count to change")


def test_the_task_page_shows_history_when_the_store_records_it(server, browser):
    group = Group(server)
    task_id = group.create("history")
    browser.get(f"{server.root_url}/tasks/{task_id}")
    history = text(browser, "#history")
    if "records no history" in history:  # journal.views.task_history not there yet: the runs tell the story
        return
    assert ROOT_CLIENT_ID in history  # who created the task


def test_the_queue_page_shows_pending_and_claimed_counts_and_workers(server, browser):
    group = Group(server)
    for name in ("a", "b", "c"):
        group.create(name)
    task_id, _ = group.claim()
    browser.get(f"{server.root_url}/task-queues/{group.queue_id}")
    screenshot(browser, "queue")
    assert text(browser, "td[data-count='pending']") == "2"
    assert text(browser, "td[data-count='claimed']") == "1"
    assert task_id in text(browser, "#workers tr[data-worker='web-group/web-worker']")


def test_the_start_page_finds_a_task(server, browser):
    from selenium.webdriver.support.ui import Select

    group = Group(server)
    task_id = group.create("found")
    browser.get(server.root_url + "/")
    Select(css(browser, "form.go select")[0]).select_by_value("task")
    css(browser, "form.go input[name=id]")[0].send_keys(task_id)
    css(browser, "form.go button")[0].click()
    wait_for(browser, lambda: browser.current_url.endswith(f"/tasks/{task_id}"), "the task page")
    assert text(browser, "h1").startswith("found")


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory):
    """A deployment whose anonymous viewers may see nothing (the e2e server's default)."""
    srv = Server(tmp_path_factory.mktemp("tj-web-closed"), None)
    yield srv
    srv.stop()


def test_an_anonymous_viewer_without_the_scope_is_refused_clearly(closed_server, browser):
    group = Group(closed_server)
    group.create("hidden")
    browser.get(group.url())
    screenshot(browser, "refused")
    refusal = text(browser, "#refusal")
    assert f"queue:list-task-group:{group.id}" in refusal and "without credentials" in refusal
    assert requests.get(group.url()).status_code == 403
    assert requests.get(f"{closed_server.root_url}/task-queues/{group.queue_id}").status_code == 403
    live = f"{closed_server.root_url}/web/live"
    assert requests.get(live, params={"page": f"/task-groups/{group.id}", "after": "0"}).status_code == 403
    assert requests.get(live, params={"page": f"/task-groups/{group.id}", "after": "x"}).status_code == 400
    assert requests.get(live, params={"page": "/nowhere", "after": "0"}).status_code == 404

    assert requests.get(bewit_url(ROOT_CLIENT_ID, "wrong", group.url(), int(time.time()) + 300)).status_code == 401
    signed = bewit_url(ROOT_CLIENT_ID, closed_server.token, group.url(), int(time.time()) + 300)
    browser.get(signed)  # a bewit lends its client's scopes to the page, and to its live stream
    assert counts(browser)["all"] == 1
    wait_for(browser, lambda: css(browser, "#live-status.on"), "the live stream to open with the page's bewit")
