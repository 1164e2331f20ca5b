"""The daemon's HTTP API through a real uvicorn on loopback: who may read and
act, bad input, the security headers, jobs end to end, /metrics."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from web_helpers import wait_final, wait_for

pytestmark = [pytest.mark.web, pytest.mark.service]


def test_reads_are_open_on_loopback_actions_need_the_token(web_daemon, store):
    client = web_daemon()
    assert client.get("/api/jobs").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}):
        r = client.post("/api/jobs", json={"command": ["true"]}, headers=headers)
        assert r.status_code == 401, r.text
        assert "needs the token" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert store.count_jobs()["pending"] == 0  # nothing was queued
    r = client.post("/api/jobs", auth=True, json={"command": ["true"], "name": "t"})
    assert r.status_code == 201
    job_id = r.json()["id"]
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 401
    wait_final(store, [job_id])
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "completed"


def test_security_headers_everywhere_and_no_cors(web_daemon):
    client = web_daemon()
    evil = {"Origin": "http://evil.example"}
    for path in ("/", "/jobs", "/api/jobs", "/static/xqute.js", "/metrics", "/nope",
                 "/api/nope", "/api/jobs/999"):  # fmt: skip
        r = client.get(path, headers=evil)
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert not any(h.startswith("access-control-") for h in r.headers), path
    r = client.http.options("/api/jobs", headers={
        **evil, "Access-Control-Request-Method": "POST"})  # fmt: skip
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


def test_a_foreign_host_name_is_refused(web_daemon):
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own
    Host; the loopback server refuses it even for reads."""
    client = web_daemon()
    r = client.get("/api/jobs", headers={"Host": "evil.example"})
    assert r.status_code == 400 and "loopback Host" in r.json()["error"]
    assert client.get("/api/jobs", headers={"Host": "localhost"}).status_code == 200


BAD = [
    ("get", "/api/jobs?state=bogus", None, 400, "'bogus' is not allowed"),
    ("get", "/api/jobs?limit=0", None, 400, "limit='0' must be an integer from 1"),
    ("get", "/api/jobs?limit=many", None, 400, "limit='many'"),
    ("get", "/api/jobs?name=" + "x" * 300, None, 400, "1 to 200 characters"),
    ("get", "/api/jobs?name=a%00b", None, 400, "without NUL"),
    ("get", "/api/jobs/abc", None, 400, "job id 'abc' must be a positive integer"),
    ("get", "/api/jobs/0", None, 400, "job id '0'"),
    ("get", f"/api/jobs/{2**70}", None, 400, "must be a positive integer"),
    ("get", "/api/jobs/424242", None, 404, "no job 424242"),
    ("get", "/api/jobs/1/log?stream=stdin", None, 400, "stream 'stdin' is not allowed"),
    ("get", "/api/jobs/1/log?offset=-1", None, 400, "offset='-1'"),
    ("get", "/api/alerts?firing=maybe", None, 400, "firing='maybe' must be true"),
    ("get", "/api/nope", None, 404, "no page /api/nope"),
    ("delete", "/api/jobs", None, 405, "DELETE is not allowed on /api/jobs"),
    ("post", "/api/jobs", b"{not json", 400, "the body is not valid JSON"),
    # (nesting was a 500, and at 100,000 levels a reset connection)
    ("post", "/api/jobs", b"[" * 2000 + b"]" * 2000, 400, "nested too deeply"),
    ("post", "/api/jobs", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("post", "/api/jobs", b'{"cpus": NaN}', 400, "NaN is not a JSON value"),
    ("post", "/api/jobs", b'{"timeout_s": -Infinity}', 400, "-Infinity is not a JSON"),
    ("post", "/api/jobs", b"[1, 2]", 400, "the body must be a JSON object"),
    ("post", "/api/jobs", b'{"command": " "}', 400, "command ' ' must be shell code"),
    ("post", "/api/jobs", b'{"command": []}', 400, "must be shell code (a string) or"),
    ("post", "/api/jobs", b'{"command": ["x"], "cpu": 2}', 400,
     "field 'cpu' is not allowed; choose one of"),
    ("post", "/api/jobs", b'{"command": ["x"], "mem_mb": "4G"}', 400,
     "mem_mb '4G' must be an integer from 0"),
    ("post", "/api/jobs", b'{"command": ["x"], "cpus": true}', 400,
     "cpus True must be an integer from 1"),
    ("post", "/api/jobs", b'{"command": ["x"], "timeout_s": 0}', 400,
     "timeout_s 0 must be a number of seconds > 0"),
    ("post", "/api/jobs", b'{"command": ["x"], "working_dir": "rel"}', 400,
     "working_dir 'rel' must be an absolute path"),
    ("post", "/api/jobs", b'{"command": ["x", "a\\u0000b"]}', 400,
     "must be a string without NUL"),
    ("post", "/api/jobs", b'{"command": ["x"], "env": {"1A": "v"}}', 400,
     "environment variable name '1A' is invalid"),
    ("post", "/api/jobs", b'{"command": ["x"], "env": {"A": 1}}', 400,
     "env A 1 must be a string"),
    ("post", "/api/jobs", b"x" * (1 << 21), 413, "larger than"),
    ("post", "/api/jobs/424242/cancel", b"", 404, "no job 424242"),
]  # fmt: skip


def test_bad_input_is_a_4xx_with_a_clear_json_error(web_daemon, store):
    client = web_daemon()
    store.submit_job(["true"])  # job 1 exists
    for method, path, body, status, message in BAD:
        if method == "post":
            r = client.post(path, auth=True, content=body,
                            headers={"Content-Type": "application/json"})  # fmt: skip
        else:
            r = client.http.request(method.upper(), path)
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/json"), path
        error = r.json()["error"]
        assert message in error, (path, error)
        assert "Traceback" not in r.text


def test_submit_follow_the_log_and_cancel(web_daemon, store):
    client = web_daemon()
    script = "for i in $(seq 1 300); do echo line $i; sleep 0.1; done"
    r = client.post("/api/jobs", auth=True, json={"command": script, "name": "talker"})
    job_id = r.json()["id"]
    chunk = wait_for(
        lambda: (c := client.get(f"/api/jobs/{job_id}/log").json())["size"] > 20 and c,
        what="output",
    )
    assert chunk["data"].startswith("line 1\nline 2\n") and not chunk["final"]
    url, after = f"/api/jobs/{job_id}/log", {"offset": chunk["next_offset"]}
    later = wait_for(
        lambda: (c := client.get(url, params=after).json())["data"] and c,
        what="more output",
    )
    assert later["offset"] == chunk["next_offset"]
    assert later["data"].startswith("line ")
    tail = client.get(f"/api/jobs/{job_id}/log", params={"tail": 8}).json()
    assert tail["offset"] == tail["size"] - 8 and len(tail["data"]) == 8
    r = client.post(f"/api/jobs/{job_id}/cancel", auth=True)
    assert r.json() == {"id": job_id, "result": "cancelling"}
    wait_final(store, [job_id])
    detail = client.get(f"/api/jobs/{job_id}").json()
    assert detail["state"] == "cancelled" and detail["final"] is True
    assert client.get(f"/api/jobs/{job_id}/log").json()["final"] is True


def test_the_listings_mirror_the_cli_json(web_daemon, store, db_path):
    client = web_daemon()
    ids = store.submit_jobs([{"command": ["true"], "name": f"m{i}"} for i in range(3)])
    wait_final(store, ids)

    def cli(*argv):
        out = subprocess.run(
            [sys.executable, "-m", "xqute", *argv, "--db", str(db_path), "--json"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        import json

        return json.loads(out)

    assert client.get("/api/jobs?state=all").json() == cli("queue", "--all")
    assert client.get(f"/api/jobs/{ids[0]}").json() == cli("status", str(ids[0]))
    api_workers = client.get("/api/workers").json()
    cli_workers = cli("workers")
    assert [w["id"] for w in api_workers] == [w["id"] for w in cli_workers]
    assert client.get("/api/alerts").json() == cli("alerts") == []
    # namespaces: submitted into one, listed by it
    r = client.post("/api/jobs", auth=True, json={"command": ["true"],
                                                  "namespace": "team-a"})  # fmt: skip
    team = client.get("/api/jobs", params={"state": "all", "namespace": "team-a"})
    assert [j["id"] for j in team.json()] == [r.json()["id"]]
    assert client.get(f"/api/jobs/{r.json()['id']}").json()["namespace"] == "team-a"
    everyone = client.get("/api/jobs", params={"state": "all", "namespace": "default"})
    assert sorted(j["id"] for j in everyone.json()) == sorted(ids)


def test_dashboard_actions_need_login_and_the_csrf_token(web_daemon, store):
    client = web_daemon()
    job_id = store.submit_job(["sleep", "60"])
    wait_for(lambda: store.get_job_status(job_id)["state"] == "running", what="run")
    http = client.http
    # not logged in: the form post is refused, the page offers a login
    assert http.post(f"/jobs/{job_id}/cancel", data={"csrf": "x"}).status_code == 401
    assert "log in to cancel" in http.get(f"/jobs/{job_id}").text
    r = http.post("/login", data={"token": "wrong", "next": "/"})
    assert r.status_code == 401 and "That is not the token" in r.text
    r = http.post("/login", data={"token": client.token, "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.token not in cookie
    page = http.get(f"/jobs/{job_id}").text
    assert 'name="csrf"' in page and 'id="cancel"' in page
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    # the cookie alone is not enough (CSRF), nor with a foreign Origin
    r = http.post(f"/jobs/{job_id}/cancel", data={})
    assert r.status_code == 403 and "CSRF" in r.text
    r = http.post(f"/jobs/{job_id}/cancel", data={"csrf": csrf},
                  headers={"Origin": "http://evil.example"})  # fmt: skip
    assert r.status_code == 403
    assert store.get_job_status(job_id)["cancel_requested"] is False
    r = http.post(f"/jobs/{job_id}/cancel", data={"csrf": csrf},
                  headers={"Origin": client.url})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{job_id}"
    wait_final(store, [job_id])
    assert store.get_job_status(job_id)["state"] == "cancelled"


def test_metrics(web_daemon, store):
    client = web_daemon(workers=2)
    ok = store.submit_jobs([{"command": ["true"]} for _ in range(3)])
    bad = store.submit_job(["false"])
    held = store.submit_job(["sleep", "60"], cpus=64)  # never fits: stays pending
    wait_final(store, [*ok, bad])

    def families():
        r = client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        return {f.name: f for f in text_string_to_metric_families(r.text)}

    def value(fams, name, **labels):
        samples = [s for f in fams.values() for s in f.samples if s.name == name]
        assert samples, name
        return sum(
            s.value for s in samples
            if all(s.labels.get(k) == v for k, v in labels.items())
        )  # fmt: skip

    fams = families()
    assert value(fams, "xqute_jobs", state="pending") == 1
    assert value(fams, "xqute_job_completions_total", outcome="completed") == 3
    assert value(fams, "xqute_job_completions_total", outcome="failed") == 1
    assert value(fams, "xqute_job_duration_seconds_count", outcome="completed") == 3
    assert value(fams, "xqute_workers", pool="local", state="running") == 1
    assert value(fams, "xqute_capacity", pool="local", resource="slots") == 2
    assert value(fams, "xqute_dispatch_cycle_seconds_count", pool="local") >= 1
    assert value(fams, "xqute_db_transaction_seconds_count", op="cycle") >= 1
    assert value(fams, "xqute_build_info") == 1
    # a second scrape counts nothing twice; no label is a job id
    fams = families()
    assert value(fams, "xqute_job_completions_total") == 4
    labels = {k for f in fams.values() for s in f.samples for k in s.labels}
    assert labels <= {"state", "namespace", "priority_class", "outcome", "pool",
                      "resource", "alert", "version", "reason", "op", "le"}  # fmt: skip
    store.cancel_job(held)


def test_service_status_shows_the_url_and_the_token(web_daemon, db_path):
    client = web_daemon()
    out = subprocess.run(
        [sys.executable, "-m", "xqute", "service", "status", "--db", str(db_path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"http: {client.url}" in out
    assert f"token: {client.token}" in out


def test_a_taken_port_fails_the_start_with_the_reason(web_daemon, db_path, tmp_path):
    import socket

    from xqute.errors import ServiceError
    from xqute.queue import SchedulerService

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = SchedulerService(db_path, 1, http=f"127.0.0.1:{port}")
        with pytest.raises(
            ServiceError, match=f"cannot listen on http://127.0.0.1:{port}"
        ):
            service.start()
    wait_for(lambda: not service.status()["running"], what="the daemon to exit")
    assert "cannot listen on" in (db_path.with_suffix(".log")).read_text()


def test_on_another_address_reads_need_the_token_too(db_path):
    """Listening beyond loopback (named on purpose): every request needs the
    token; the dashboard sends a stranger to its login page."""
    from web_helpers import ThreadServer

    server = ThreadServer(db_path, listen="0.0.0.0:0")
    client = server.start()
    try:
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/api/jobs", auth=True).status_code == 200
        r = client.get("/jobs")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert client.get("/login").status_code == 200
        assert client.get("/healthz").status_code == 200
        # any Host is fine there: the token is what guards it
        r = client.get("/api/jobs", auth=True, headers={"Host": "example.org"})
        assert r.status_code == 200
    finally:
        client.close()
        server.stop()
