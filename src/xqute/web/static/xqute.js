// xqute dashboard: the live parts of the server-rendered pages.
// - [data-live="URL"]: refetched as ?fragment=1 every data-every seconds (or when
//   an event arrives, see [data-events]) and swapped in; the server renders and
//   escapes the HTML. [data-until-final]: stops once the fragment says final.
// - #log: a job's stdout/stderr, followed by offset while the job runs.
// - table#events: the event stream (EventSource; it resumes by Last-Event-ID).
// No third-party code, no build step.
"use strict";

(function () {
  function withFragment(url) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "fragment=1";
  }

  function setupLive(el) {
    var url = el.getAttribute("data-live");
    var every = parseFloat(el.getAttribute("data-every") || "3") * 1000;
    var untilFinal = el.hasAttribute("data-until-final");
    var busy = false, stopped = false, timer = null;

    function refresh() {
      if (busy || stopped || document.hidden) return Promise.resolve();
      busy = true;
      return fetch(withFragment(url), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== el.innerHTML) {
            el.innerHTML = html;
            el.dispatchEvent(new CustomEvent("xqute:updated", {bubbles: true}));
          }
          if (untilFinal && el.querySelector('[data-final="true"]')) stop();
        })
        .catch(function () { /* the daemon restarts: try again later */ })
        .then(function () { busy = false; });
    }
    function stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      el.dispatchEvent(new CustomEvent("xqute:stopped"));
    }
    el.xquteRefresh = refresh;
    if (untilFinal && el.querySelector('[data-final="true"]')) return;
    timer = setInterval(refresh, every);
  }

  function setupEventsTrigger(el) {
    // a live region that also refreshes at once when a matching event arrives
    var src = el.getAttribute("data-events");
    if (!src || !window.EventSource) return;
    if (el.hasAttribute("data-until-final") && el.querySelector('[data-final="true"]')) return;
    var pending = null;
    var es = new EventSource(src);
    el.addEventListener("xqute:stopped", function () { es.close(); });
    es.onmessage = function () {
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        if (el.xquteRefresh) el.xquteRefresh();
      }, 100);
    };
  }

  function setupLog(pre) {
    var job = pre.getAttribute("data-job");
    var stream = pre.getAttribute("data-stream") || "stdout";
    var offset = null, timer = null, generation = 0;
    var status = document.getElementById("log-status");

    function poll() {
      var mine = generation;
      var q = offset === null ? "tail=65536" : "offset=" + offset;
      fetch("/api/jobs/" + job + "/log?stream=" + stream + "&" + q, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (chunk) {
          if (!chunk || mine !== generation) return;
          if (offset === null && chunk.offset > 0) {
            pre.appendChild(document.createTextNode("[... " + chunk.offset + " bytes before]\n"));
          }
          if (chunk.data) pre.appendChild(document.createTextNode(chunk.data));
          offset = chunk.next_offset;
          // more in the file now (not: the rest of a character still coming)
          var more = chunk.data !== "" && chunk.next_offset < chunk.size;
          if (status) status.textContent = chunk.final ? "The job has ended." : "Following...";
          if (chunk.final && !more) { clearInterval(timer); timer = null; }
          else if (more) poll();
        })
        .catch(function () {});
    }
    function start(newStream) {
      generation += 1;
      stream = newStream;
      offset = null;
      pre.textContent = "";
      if (timer) clearInterval(timer);
      poll();
      timer = setInterval(poll, 1000);
    }
    document.querySelectorAll("button.tab[data-stream]").forEach(function (b) {
      b.addEventListener("click", function () {
        document.querySelectorAll("button.tab").forEach(function (o) {
          o.setAttribute("aria-pressed", o === b ? "true" : "false");
        });
        start(b.getAttribute("data-stream"));
      });
    });
    start(stream);
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  function setupEvents(table) {
    if (!window.EventSource) return;
    var url = table.getAttribute("data-stream");
    var after = table.getAttribute("data-after");
    var body = table.querySelector("tbody");
    var es = new EventSource(url + (after ? "?after=" + after : ""));
    es.onmessage = function (msg) {
      var e;
      try { e = JSON.parse(msg.data); } catch (err) { return; }
      var tr = document.createElement("tr");
      var when = new Date(e.ts * 1000).toLocaleString();
      [e.id, when, e.type, e.run_id, e.task, e.job_id].forEach(function (v) {
        tr.appendChild(cell(v));
      });
      var data = cell("");
      var code = document.createElement("code");
      code.textContent = JSON.stringify(e.data);
      data.appendChild(code);
      tr.appendChild(data);
      tr.className = "new";
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(setupLive);
    document.querySelectorAll("[data-events]").forEach(setupEventsTrigger);
    var log = document.getElementById("log");
    if (log) setupLog(log);
    var events = document.querySelector("table#events");
    if (events) setupEvents(events);
  });
})();
