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
  var first = document.querySelector("[aria-invalid=true]");
  if (first) first.focus();
})();
