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
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function tick() {
    var ts = document.querySelectorAll("time[data-expires]");
    for (var i = 0; i < ts.length; i++) {
      var left = Math.round((Date.parse(ts[i].getAttribute("data-expires")) - Date.now()) / 1000);
      if (isNaN(left)) { continue; }
      if (left <= 0) { ts[i].textContent = "expired; being torn down"; continue; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      ts[i].textContent = (d > 0 ? d + "d " : "") + h + "h " + pad(m) + "m " + pad(s) + "s left";
    }
  }
  if (document.querySelector("time[data-expires]")) { tick(); setInterval(tick, 1000); }
})();
