// Live campaign progress: poll the progress JSON every 2 s and update the page in place.
// Stops once the campaign is finished (sent, cancelled or failed) or the element is gone.
(function () {
  "use strict";
  var root = document.querySelector("[data-campaign-progress]");
  if (!root) return;
  var url = root.getAttribute("data-url");
  var number = new Intl.NumberFormat();

  function set(name, text) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function render(data) {
    ["done", "recipients", "sent", "failed", "skipped", "remaining"].forEach(function (key) {
      set(key, number.format(data[key]));
    });
    set("status_label", data.status_label);
    set("percent", data.percent);
    set("rate", data.rate);
    set("eta", formatDuration(data.eta_seconds));
    var bar = root.querySelector('[data-field="bar"]');
    bar.setAttribute("aria-valuenow", data.percent);
    var inner = bar.querySelector(".bar");
    inner.style.width = data.percent + "%";
    inner.textContent = data.percent + "%";
    // Show only the controls that apply to the new status (the server says which).
    root.querySelectorAll("[data-action-name]").forEach(function (form) {
      form.hidden = data.actions.indexOf(form.getAttribute("data-action-name")) === -1;
    });
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        render(data);
        if (!data.is_final) window.setTimeout(poll, 2000);
      })
      .catch(function () {
        window.setTimeout(poll, 10000); // the server is busy or gone: try again, less often
      });
  }

  if (root.getAttribute("data-final") !== "true") window.setTimeout(poll, 2000);
})();
