// The cashier's page, enhanced: an instant typo hint from the public check character (its
// rule comes from the server, /terminal/check-character.js), a photo sent as soon as it is
// taken, and live scanning where the browser has BarcodeDetector. Works without this file.
(function () {
  "use strict";
  var rule = window.O2O_CODE;
  var input = document.getElementById("f-code");
  var out = document.getElementById("code-check");
  var form = input ? input.form : null;

  function compact(text) {
    var t = text.normalize ? text.normalize("NFKC") : text;
    t = t.trim().toUpperCase();
    if (t.indexOf(rule.prefix) === 0) t = t.slice(rule.prefix.length);
    t = t.replace(/[\s\-_.\u2010-\u2014\u2212]/g, "");
    return t.replace(/[OILS]/g, function (c) { return rule.lookalikes[c]; });
  }

  function verdict(text) {
    var t = compact(text);
    if (!t) return "";
    for (var i = 0; i < t.length; i++) {
      if (rule.alphabet.indexOf(t[i]) < 0) return "typo";
    }
    if (t.length < rule.length) return "short";
    if (t.length > rule.length) return "typo";
    var sum = 0;
    for (var j = 0; j < t.length; j++) sum += (j + 1) * rule.alphabet.indexOf(t[j]);
    return sum % rule.base === 0 ? "ok" : "typo";
  }

  if (rule && input && out) {
    var initial = out.textContent;
    input.addEventListener("input", function () {
      var v = verdict(input.value);
      out.className = "hint code-check" + (v === "ok" || v === "typo" ? " " + v : "");
      out.textContent = v === "ok" ? (out.dataset.ok || "✓ Looks right: check it.")
        : v === "typo" ? (out.dataset.typo || "✗ This code has a typo.")
        : v === "short" ? (compact(input.value).length + " / " + rule.length) : initial;
    });
  }

  var photo = document.getElementById("f-photo");
  if (photo && form) {
    photo.addEventListener("change", function () { if (photo.files.length) form.submit(); });
  }

  var start = document.getElementById("live-start");
  if (start && form && "BarcodeDetector" in window && navigator.mediaDevices) {
    start.hidden = false;
    var box = document.getElementById("live-scan");
    var video = document.getElementById("live-video");
    var stream = null;
    var stop = function () {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null; box.hidden = true; start.hidden = false;
    };
    document.getElementById("live-stop").addEventListener("click", stop);
    start.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s; video.srcObject = s; box.hidden = false; start.hidden = true; video.play();
        var look = function () {
          if (!stream) return;
          detector.detect(video).then(function (found) {
            if (found.length) { input.value = found[0].rawValue; stop(); form.submit(); return; }
            window.setTimeout(look, 200);
          }).catch(function () { window.setTimeout(look, 400); });
        };
        look();
      }).catch(stop);
    });
  }
})();
