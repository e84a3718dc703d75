// The subscriber attributes editor (subscribers.admin_forms.AttributesWidget): "Add a field"
// appends a blank name/value row from the <template>, "Remove" takes its row out. Focus moves to
// where the editor will type next. The server never depends on this: blank rows are ignored.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    var remove = event.target.closest("[data-remove-row]");
    var editor = event.target.closest("[data-attributes-editor]");
    if (!editor || (!add && !remove)) return;
    var rows = editor.querySelector("[data-rows]");
    if (add) {
      var template = editor.querySelector("template[data-row-template]");
      var row = template.content.firstElementChild.cloneNode(true);
      rows.appendChild(row);
      row.querySelector("input").focus();
      return;
    }
    var current = remove.closest("tr");
    var neighbour = current.nextElementSibling || current.previousElementSibling;
    current.remove();
    (neighbour ? neighbour.querySelector("input") : editor.querySelector("[data-add-row]")).focus();
  });
})();
