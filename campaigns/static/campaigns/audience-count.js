// The send form's live count (campaigns.admin_views.AudienceCountView): as the editor ticks lists or
// chooses a segment, ask how many would receive it and say so under the segment field. The count
// is the one the confirmation step shows and the snapshot inserts (subscribers.audience.Audience).
(function () {
  "use strict";
  function start() {
    var output = document.querySelector("[data-audience-count]");
    if (!output) return;
    var form = output.closest("form");
    var request = 0;
    function update() {
      var query = new URLSearchParams();
      form.querySelectorAll("[name=lists]:checked").forEach(function (box) { query.append("lists", box.value); });
      var segment = form.querySelector("[name=segment]");
      if (segment) query.append("segment", segment.value);
      var number = ++request;
      fetch(output.dataset.url + "?" + query.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (number !== request) return; // an older answer arriving late
          output.textContent = data.count === null ? (data.errors || []).join(" ") : output.dataset.text.replace("%(count)s", Number(data.count).toLocaleString());
          output.dataset.count = data.count === null ? "" : String(data.count);
        })
        .catch(function () { if (number === request) output.textContent = ""; });
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "lists" || event.target.name === "segment") update();
    });
    update();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
