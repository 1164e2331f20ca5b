"""The dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright (never a browser download), against a daemon running real jobs.

Screenshots of every page (laptop and phone) go to the test's tmp dir.
"""

from __future__ import annotations

import shutil
import time

import pytest
from web_helpers import wait_final, wait_for

pytestmark = [pytest.mark.web, pytest.mark.service]

CHROMIUM = "/usr/bin/chromium"
# as root Chromium needs --no-sandbox; the rest keep it off the network
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = ["/", "/jobs?state=all", "/jobs/{job}", "/runs", "/runs/{run}", "/schedules",
         "/resources", "/events", "/alerts", "/login"]  # fmt: skip
VIEWPORTS = {"laptop": (1366, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def browser(services):
    def usable() -> str | None:
        reason = services.run_script("chromium", "setup", needs=["chromium"])
        if reason is not None:
            return reason
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "playwright is not installed (pip install -e '.[test]')"
        return None

    services.require("chromium", usable)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_of(browser):
    """page_of(viewport="laptop") -> a new page that fails the test on a script
    error or a console error."""
    contexts = []

    def make(viewport: str = "laptop"):
        width, height = VIEWPORTS[viewport]
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: msg.type == "error" and page.errors.append(msg.text),
        )
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, tmp_path, name: str) -> None:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def login(page, client) -> None:
    page.goto(f"{client.url}/login")
    page.fill("input[name=token]", client.token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{client.url}/")
    assert page.locator("text=Log out").count() == 1


def test_every_page_loads_on_a_laptop_and_a_phone(
    web_daemon, store, db_path, page_of, tmp_path
):
    from xqute.orchestration import (
        Cron,
        JobSpec,
        Orchestrator,
        ResourceLimits,
        ResourceQuota,
        Task,
        Workflow,
    )

    client = web_daemon(workers=2)
    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="etl", tasks=[
        Task("extract", shell="echo rows > $XQUTE_OUTPUT"),
        Task("load", command=["echo", "#{extract.output}"], dependencies=["extract"]),
        Task("report", command=["false"], dependencies=["extract"]),
    ]))  # fmt: skip
    orch.create_job(
        JobSpec(
            name="nightly",
            command=["true"],
            schedule=Cron("30 2 * * *", timezone="Europe/Berlin"),
        )
    )
    orch.create_resource_quota(
        ResourceQuota(
            name="team-quota", namespace="team-a", limits=ResourceLimits(cpu=2)
        )
    )
    run_id = orch.execute_workflow("etl").id
    wait_for(lambda: orch.get_workflow_status(run_id).final, what="the run to end")
    done = store.submit_jobs([{"command": ["echo", f"hi {i}"], "name": f"batch_{i}"}
                              for i in range(3)])  # fmt: skip
    failed = store.submit_job(["sh", "-c", "echo oops >&2; exit 3"], job_name="broken")
    wait_final(store, [*done, failed])
    long = store.submit_job(["sleep", "60"], job_name="a rather long job name " * 3)
    wait_for(lambda: store.get_job_status(long)["state"] == "running", what="run")
    for viewport in VIEWPORTS:
        page = page_of(viewport)
        for path in PAGES:
            url = client.url + path.format(job=failed, run=run_id)
            response = page.goto(url)
            assert response.status == 200, (path, response.status)
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").count() == 1, path
            # nothing wider than the screen but the tables' own scrollers
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, (viewport, path, overflow)
            name = path.strip("/").split("?")[0].replace("/", "_")
            name = name.replace("{job}", "id").replace("{run}", "id")
            shot(page, tmp_path, f"{viewport}-{name or 'overview'}")
        assert page.errors == [], page.errors
    # what the pages say
    page = page_of()
    page.goto(f"{client.url}/jobs/{failed}")
    assert page.locator(".job-head .state").inner_text() == "failed"
    page.click("button.tab[data-stream=stderr]")
    wait_for(lambda: "oops" in page.locator("#log").inner_text(), what="stderr")
    page.goto(f"{client.url}/jobs?state=all")
    assert page.locator("table.jobs tbody tr").count() == 5 + 3  # + the run's tasks
    page.goto(f"{client.url}/runs/{run_id}")
    assert page.locator("svg.dag g.node").count() == 3
    assert (
        page.locator("svg.dag g.node[data-task=report]").get_attribute("data-state")
        == "failed"
    )
    page.goto(f"{client.url}/schedules")
    assert "job/nightly" in page.locator("main").inner_text()
    store.cancel_job(long)


def test_a_script_in_a_job_name_is_text(web_daemon, store, page_of):
    client = web_daemon()
    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    job = store.submit_job(["echo", evil], job_name=evil)
    wait_final(store, [job])
    page = page_of()
    for path in ("/jobs?state=all", f"/jobs/{job}"):
        page.goto(client.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src=x]").count() == 0
        assert page.locator("script").count() == 1  # ours
        assert evil in page.locator("main").inner_text()
    # the log tail is text too (its output is the same string)
    wait_for(lambda: evil in page.locator("#log").inner_text(), what="the log")
    assert page.evaluate("window.__xss") is None
    assert page.errors == []


def test_cancel_a_running_job_from_its_page(web_daemon, store, page_of, tmp_path):
    client = web_daemon()
    job = store.submit_job(
        ["sh", "-c", "for i in $(seq 1 600); do echo tick $i; sleep 0.1; done"],
        job_name="ticker",
    )
    wait_for(lambda: store.get_job_status(job)["state"] == "running", what="run")
    page = page_of()
    page.goto(f"{client.url}/jobs/{job}")
    assert page.locator("#cancel").count() == 0  # reading needs no login; acting does
    assert page.locator("text=log in to cancel").count() == 1
    # the log follows the running job
    wait_for(lambda: "tick 3" in page.locator("#log").inner_text(), what="output")
    login(page, client)
    page.goto(f"{client.url}/jobs/{job}")
    with page.expect_navigation():  # POST, then 303 back to the job's page
        page.click("#cancel")
    assert page.url == f"{client.url}/jobs/{job}", page.locator("main").inner_text()
    wait_final(store, [job])
    assert store.get_job_status(job)["state"] == "cancelled"
    # the page's live part catches up without a reload
    wait_for(
        lambda: page.locator(".job-head .state").inner_text() == "cancelled",
        what="the page to show cancelled",
    )
    wait_for(
        lambda: "ended" in page.locator("#log-status").inner_text(), what="log end"
    )
    shot(page, tmp_path, "cancelled")
    assert page.errors == []


def test_the_jobs_list_and_events_update_live(web_daemon, store, page_of):
    client = web_daemon()
    page = page_of()
    page.goto(f"{client.url}/jobs?state=all")
    assert page.locator("table.jobs tbody tr[data-job]").count() == 0
    job = store.submit_job(["true"], job_name="late arrival")
    wait_for(
        lambda: page.locator(f"tr[data-job='{job}']").count() == 1,
        what="the new job to appear without a reload",
    )
    page.goto(f"{client.url}/events")
    page.wait_for_load_state("networkidle")
    from xqute.orchestration import events

    store.db.write(lambda c: events.append(c, "test.hello", time.time(), data={"x": 1}))
    wait_for(
        lambda: page.locator("table#events tbody tr", has_text="test.hello").count(),
        what="the event to appear live",
    )
    assert page.errors == []


def test_chromium_is_debians(browser):
    """The browser is the system's (no download): the version it reports."""
    assert shutil.which("chromium") == CHROMIUM
    assert browser.version.split(".")[0].isdigit()


def test_the_dag_shows_the_tasks_states_changing_live(
    web_daemon, db_path, page_of, tmp_path
):
    from xqute.orchestration import Orchestrator, Task, Workflow

    client = web_daemon(workers=2)
    gate = tmp_path / "go"
    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="live", tasks=[
        Task("first", command=["true"]),
        Task("gated", shell=f"while [ ! -e {gate} ]; do sleep 0.1; done",
             dependencies=["first"]),
        Task("side", command=["true"], dependencies=["first"]),
        Task("last", shell="echo done > $XQUTE_OUTPUT", dependencies=["gated", "side"]),
    ]))  # fmt: skip
    run_id = orch.execute_workflow("live").id
    page = page_of()
    page.goto(f"{client.url}/runs/{run_id}")

    def state(task: str) -> str:
        return page.locator(f"svg.dag g.node[data-task='{task}']").get_attribute(
            "data-state"
        )

    wait_for(lambda: state("gated") == "running", what="gated to run, on the page")
    assert state("first") == "succeeded" and state("last") == "blocked"
    assert page.locator("svg.dag path.edge").count() == 4
    shot(page, tmp_path, "dag-running")
    loads = []
    page.on("load", lambda _: loads.append(1))
    gate.touch()  # now the rest runs; the page follows without a reload
    wait_for(lambda: state("last") == "succeeded", what="last to succeed, live")
    assert state("gated") == "succeeded"
    assert page.locator(".run-head .state").first.inner_text() == "succeeded"
    assert loads == []  # updated in place
    row = page.locator("table.tasks tr[data-task='last']")
    assert "done" in row.inner_text()
    shot(page, tmp_path, "dag-done")
    assert page.errors == []


def test_cancel_and_retry_a_run_from_its_page(web_daemon, db_path, page_of, tmp_path):
    from xqute.orchestration import Orchestrator, Task, Workflow

    client = web_daemon()
    gate = tmp_path / "go"
    orch = Orchestrator(db_path)
    orch.create_workflow(Workflow(name="stuck", tasks=[
        Task("wait", shell=f"while [ ! -e {gate} ]; do sleep 0.1; done"),
        Task("after", command=["true"], dependencies=["wait"]),
    ]))  # fmt: skip
    run_id = orch.execute_workflow("stuck").id
    wait_for(lambda: orch.get_workflow_status(run_id).task("wait").state == "running",
             what="the task to run")  # fmt: skip
    page = page_of()
    login(page, client)
    page.goto(f"{client.url}/runs/{run_id}")
    with page.expect_navigation():
        page.click("#cancel")
    wait_for(lambda: orch.get_workflow_status(run_id).state == "cancelled",
             what="the run to be cancelled")  # fmt: skip
    gate.touch()
    page.goto(f"{client.url}/runs/{run_id}")
    with page.expect_navigation():
        page.click("#retry")
    wait_for(lambda: orch.get_workflow_status(run_id).state == "succeeded",
             what="the retried run to succeed")  # fmt: skip
    assert orch.get_workflow_status(run_id).attempt == 2
    assert page.errors == []
