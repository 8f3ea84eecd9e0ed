// Live pages: the server sends `changed` (server-sent events) when what this
// page shows has changed; the page then fetches itself again and swaps its
// <main>. The stream is authorized as the page itself (same path and query).
(function () {
  "use strict";
  var position = document.body.dataset.position;
  if (position === undefined || !window.EventSource) return;
  var status = document.getElementById("live-status");
  var page = location.pathname + location.search;
  var source = new EventSource("/web/live?page=" + encodeURIComponent(page) + "&after=" + position);
  var busy = false, again = false;

  function show(text, on) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("on", on);
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(page, {headers: {"Accept": "text/html"}, cache: "no-store", credentials: "same-origin"})
      .then(function (reply) { return reply.ok ? reply.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var main = fresh.querySelector("main");
        if (main) document.querySelector("main").replaceWith(document.adoptNode(main));
        document.body.dataset.position = fresh.body.dataset.position;
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      })
      .catch(function () { again = true; })
      .finally(function () {
        busy = false;
        if (again) { again = false; setTimeout(refresh, 500); }
      });
  }

  source.addEventListener("changed", refresh);
  source.onopen = function () { show("live", true); };
  source.onerror = function () { show("reconnecting", false); };
})();
