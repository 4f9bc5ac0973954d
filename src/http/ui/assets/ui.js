// edgewatch web UI: the overview's refresh in place. A <main data-refresh="URL"> is
// replaced every 10 s by the <main> of URL (server-rendered, escaped by the server),
// parsed with DOMParser (which runs no script). Data is never put in as HTML here;
// the status line is set with textContent.
"use strict";
(function () {
  var PERIOD_MS = 10000;
  function status(text) {
    var s = document.getElementById("status");
    if (s) { s.textContent = text; }
  }
  function refresh() {
    var main = document.querySelector("main[data-refresh]");
    if (!main) { return; }
    fetch(main.getAttribute("data-refresh"), { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) { window.location.reload(); return null; }
        if (!resp.ok) { throw new Error("HTTP " + resp.status); }
        return resp.text();
      })
      .then(function (text) {
        if (text === null) { return; }
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main");
        if (!fresh) { throw new Error("no <main> in the answer"); }
        var open = main.querySelectorAll("details[open]").length > 0;
        main.replaceWith(document.adoptNode(fresh));
        if (open) { fresh.querySelectorAll("details").forEach(function (d) { d.open = true; }); }
        status("updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) { status("not updated: " + e.message); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("main[data-refresh]")) {
      status("refreshes every 10 s");
      window.setInterval(refresh, PERIOD_MS);
    }
  });
})();
