/* FaceLead: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  // CJIS session lock: once the server's idle timeout has passed, leave the page so
  // that no probe or candidate stays on an unattended screen.
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (body.getAttribute("data-signed-in") === "true" && idle > 0) {
    var timer = null;
    var arm = function () {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () {
        window.location.assign("/login?reason=expired");
      }, (idle + 5) * 1000);
    };
    arm();
  }

  // The upload limit, said before a large file is sent (the server refuses it anyway).
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () {
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var file = input.files && input.files[0];
      input.setCustomValidity(file && file.size > max
        ? "This file is larger than " + Math.floor(max / 1048576) + " MiB." : "");
    });
  });

  // Face picker: size the overlay of numbered boxes to the probe's own pixels.
  var img = document.getElementById("pending-image");
  var boxes = document.getElementById("face-boxes");
  if (img && boxes) {
    var fit = function () {
      if (img.naturalWidth) {
        boxes.setAttribute("viewBox", "0 0 " + img.naturalWidth + " " + img.naturalHeight);
      }
    };
    if (img.complete) { fit(); } else { img.addEventListener("load", fit); }
  }
})();
