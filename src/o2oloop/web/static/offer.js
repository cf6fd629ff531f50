// The offer page, enhanced: share through the phone's own sheet (or copy the link), and
// claim with the consumer key the o2oloop app keeps in this browser, carrying the link's
// token so the claim is attributed to the channel or friend that brought it.
(function () {
  "use strict";
  var KEY = "o2oloop.consumer_key";

  document.querySelectorAll("[data-share]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var url = link.getAttribute("href");
      if (navigator.share) {
        event.preventDefault();
        navigator.share({ title: link.dataset.shareTitle, url: url }).catch(function () {});
      } else if (navigator.clipboard) {
        event.preventDefault();
        navigator.clipboard.writeText(url).then(function () {
          link.textContent = link.dataset.copied || "Link copied";
        });
      }
    });
  });

  var button = document.querySelector("[data-claim-offer]");
  var result = document.querySelector("[data-claim-result]");
  var key = null;
  try { key = window.localStorage.getItem(KEY); } catch (e) { key = null; }
  if (!button || !key) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var url = "/v1/offers/" + encodeURIComponent(button.dataset.claimOffer) + "/claim";
    if (button.dataset.claimVia) url += "?via=" + encodeURIComponent(button.dataset.claimVia);
    button.disabled = true;
    fetch(url, {
      method: "POST",
      headers: {
        "Authorization": "Bearer " + key,
        "Idempotency-Key": "page-" + Date.now() + "-" + Math.random().toString(36).slice(2),
      },
    }).then(function (answer) {
      return answer.json().then(function (body) { return { ok: answer.ok, body: body }; });
    }).then(function (reply) {
      result.textContent = "";
      if (reply.ok) {
        button.hidden = true;
        var code = document.createElement("span");
        code.className = "code";
        code.textContent = reply.body.code;
        result.append("Your code: ", code);
      } else {
        result.textContent = reply.body.detail || reply.body.title || "Could not claim";
        button.disabled = false;
      }
    });
  });
})();
