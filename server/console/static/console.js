// The console's one script. Every page is complete without it; with it,
// pages that name an event stream (main[data-live]) update in place, and
// time-to-live countdowns tick. It only inserts HTML the server rendered
// with html/template (escaped), and loads nothing else.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  var badge = document.getElementById("live-state");
  if (main && window.EventSource) {
    var es = new EventSource(main.getAttribute("data-live"));
    es.onopen = function () { if (badge) { badge.textContent = "live"; badge.classList.add("on"); } };
    es.onerror = function () { if (badge) { badge.textContent = "reconnecting…"; badge.classList.remove("on"); } };
    es.addEventListener("rollouts", function (e) {
      var box = document.getElementById("rollouts");
      if (box) { box.innerHTML = e.data; }
    });
    es.addEventListener("log", function (e) {
      var rows = document.getElementById("log-rows");
      if (!rows) { return; }
      rows.insertAdjacentHTML("beforeend", e.data);
      while (rows.rows.length > 1000) { rows.deleteRow(0); }
    });
  }
  // Countdowns count from the time left as the server saw it when it
  // rendered the page, so a browser whose clock is off still counts right.
  var loaded = Date.now();
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function tick() {
    var ts = document.querySelectorAll("time[data-left]");
    var gone = Math.floor((Date.now() - loaded) / 1000);
    for (var i = 0; i < ts.length; i++) {
      var left = parseInt(ts[i].getAttribute("data-left"), 10) - gone;
      if (isNaN(left)) { continue; }
      if (left <= 0) { ts[i].textContent = "expired; being torn down"; continue; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      ts[i].textContent = (d > 0 ? d + "d " : "") + h + "h " + pad(m) + "m " + pad(s) + "s left";
    }
  }
  if (document.querySelector("time[data-left]")) { tick(); setInterval(tick, 1000); }
})();
