// mailaudit portal: the live progress of an audit run (written for this project, MIT OR
// Apache-2.0). Reads the run's server-sent events (/runs/ID/events) and updates the page; when
// the run is over, reloads it. Without script, the page refreshes itself instead.
(function () {
  "use strict";
  var section = document.getElementById("run-progress");
  if (!section || !window.EventSource) {
    return;
  }
  var set = function (id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  };
  var source = new EventSource(section.getAttribute("data-events"));
  source.addEventListener("progress", function (e) {
    var p = JSON.parse(e.data);
    var bar = document.getElementById("run-bar");
    if (bar) {
      bar.max = Math.max(p.total, 1);
      bar.value = p.done;
    }
    set("run-done", String(p.done));
    set("run-total", String(p.total));
    set("run-percent", p.percent + "%");
    section.setAttribute("data-status", p.status);
    if (p.status !== "running") {
      source.close();
      window.location.reload();
    } else if (p.workers.length > 0) {
      set("run-status", "Auditing (" + p.workers.join(", ") + ").");
    }
  });
  source.onerror = function () {
    // The stream ended (the run is over, or the server went away): show what is stored.
    source.close();
    window.setTimeout(function () { window.location.reload(); }, 2000);
  };
})();
