// Swaps in the live part of the page every second; nothing else.
(function () {
  function refresh() {
    fetch("/ui/live", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var main = document.getElementById("live");
        if (main) { main.outerHTML = html; }
        document.body.dataset.updated = String(Date.now());
      })
      .catch(function () { document.body.dataset.stale = "true"; });
  }
  setInterval(refresh, 1000);
})();
