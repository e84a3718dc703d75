// Live campaign progress: poll the progress JSON every 2 s and update the page in place.
// Every figure arrives pre-formatted in data.labels (the server renders the page with the same
// labels), so live updates and the page use one number format. When the campaign reaches a final
// status (sent, cancelled or failed) the page reloads once: the header, the facts (finished time),
// the average rate and duration and the deliveries table then all show the end state.
(function () {
  "use strict";
  var root = document.querySelector("[data-campaign-progress]");
  if (!root) return;
  var url = root.getAttribute("data-url");

  function set(name, text) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function render(data) {
    Object.keys(data.labels).forEach(function (key) {
      set(key, data.labels[key]);
    });
    var bar = root.querySelector('[data-field="bar"]');
    bar.setAttribute("aria-valuenow", data.percent);
    var inner = bar.querySelector(".bar");
    inner.style.width = data.percent + "%";
    inner.textContent = data.labels.percent + "%";
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
        if (data.is_final) {
          window.location.reload();
          return;
        }
        render(data);
        window.setTimeout(poll, 2000);
      })
      .catch(function () {
        window.setTimeout(poll, 10000); // the server is busy or gone: try again, less often
      });
  }

  if (root.getAttribute("data-final") !== "true") window.setTimeout(poll, 2000);
})();
