// Small progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]")) {
      target.form.submit();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    // One press is one request: a second press while the page loads does nothing.
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    window.setTimeout(function () { form.dataset.sent = ""; }, 4000);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (!button) return;
    var list = document.getElementById(button.getAttribute("data-add-row"));
    var rows = list ? list.querySelectorAll("[data-row]") : [];
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].hidden) { rows[i].hidden = false; var input = rows[i].querySelector("input"); if (input) input.focus(); break; }
    }
  });
  // Empty optional rows (more time windows) wait behind an "Add" button.
  var optional = document.querySelectorAll("[data-optional]");
  for (var j = 0; j < optional.length; j++) optional[j].hidden = true;
  // An offer form shows the sections of the chosen kind only.
  var kindForm = document.querySelector("[data-kind-form]");
  if (kindForm && kindForm.elements.kind) {
    var showKind = function () {
      var chosen = kindForm.elements.kind.value;
      var parts = kindForm.querySelectorAll("[data-kind]");
      for (var k = 0; k < parts.length; k++) {
        parts[k].hidden = parts[k].getAttribute("data-kind").split(" ").indexOf(chosen) < 0;
      }
    };
    kindForm.elements.kind.addEventListener("change", showKind);
    showKind();
  }
  var first = document.querySelector("[aria-invalid=true]");
  if (first) first.focus();
})();
