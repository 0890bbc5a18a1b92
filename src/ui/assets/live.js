// keywarden dashboard: when a run finishes (server-sent event "run"), fetch
// this page again and swap its <main>, without a reload. Nothing else.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var source = new EventSource("/api/events");
  source.addEventListener("run", function () {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var old = document.querySelector("main");
        if (fresh && old) { old.replaceWith(fresh); }
      });
  });
})();
