/* Side-by-side comparison: synchronised zoom and pan, landmark overlay, candidate switching.
 *
 * Each image first gets a base transform (aligned on the eyes, or fitted whole); one
 * shared view transform (zoom s, pan tx/ty in viewport pixels) then applies to both, so
 * zooming or panning either image moves the other identically.
 */
(function () {
  "use strict";
  var dataNode = document.getElementById("review-data");
  if (!dataNode) { return; }
  var data = JSON.parse(dataNode.textContent);
  var viewer = document.querySelector(".viewer");
  var SVG = "http://www.w3.org/2000/svg";
  var MIN = 0.5, MAX = 12, STEP = 1.25, PAN = 40;
  var view = { s: 1, tx: 0, ty: 0 };
  var align = "eyes";

  function pane(name, marks) {
    var vp = document.getElementById("vp-" + name);
    if (!vp) { return null; }
    return { vp: vp, stage: vp.querySelector(".stage"), img: vp.querySelector("img"),
             svg: vp.querySelector("svg.marks"), marks: marks };
  }

  var currentLink = document.querySelector(".cand-nav .cand-link[aria-current]");
  var current = currentLink ? parseInt(currentLink.dataset.n, 10) : 1;
  var candidates = data.candidates || [];
  var panes = [pane("probe", data.probe.marks)];
  if (candidates.length) {
    panes.push(pane("candidate", candidates[current - 1].marks));
  }
  panes = panes.filter(function (p) { return p && p.stage; });

  function size(p) {
    if (p.marks) { return [p.marks.w, p.marks.h]; }
    return [p.img.naturalWidth || 1, p.img.naturalHeight || 1];
  }

  function base(p) {
    var W = p.vp.clientWidth, H = p.vp.clientHeight, wh = size(p);
    var pts = p.marks && p.marks.points;
    if (align === "eyes" && pts && pts.length >= 2) {
      var a = pts[0], b = pts[1];
      var d = Math.max(Math.hypot(b[0] - a[0], b[1] - a[1]), 1);
      var s = 0.24 * W / d;
      return { s: s, x: W / 2 - s * (a[0] + b[0]) / 2, y: 0.42 * H - s * (a[1] + b[1]) / 2 };
    }
    var f = Math.min(W / wh[0], H / wh[1]);
    return { s: f, x: (W - wh[0] * f) / 2, y: (H - wh[1] * f) / 2 };
  }

  function render() {
    panes.forEach(function (p) {
      var wh = size(p), b = base(p);
      p.stage.style.width = wh[0] + "px";
      p.stage.style.height = wh[1] + "px";
      var s = view.s * b.s, x = view.tx + view.s * b.x, y = view.ty + view.s * b.y;
      p.stage.style.transform = "translate(" + x + "px," + y + "px) scale(" + s + ")";
      p.vp.dataset.zoom = view.s.toFixed(3);
      p.vp.dataset.pan = Math.round(view.tx) + "," + Math.round(view.ty);
    });
    var out = document.getElementById("zoom-level");
    if (out) { out.textContent = Math.round(view.s * 100) + "%"; }
  }

  function zoomAt(k, px, py) {
    var s = Math.min(MAX, Math.max(MIN, view.s * k));
    k = s / view.s;
    view.tx = px - (px - view.tx) * k;
    view.ty = py - (py - view.ty) * k;
    view.s = s;
    render();
  }

  function centre(p) { return [p.vp.clientWidth / 2, p.vp.clientHeight / 2]; }
  function reset() { view = { s: 1, tx: 0, ty: 0 }; render(); }

  function drawMarks(p) {
    while (p.svg.firstChild) { p.svg.removeChild(p.svg.firstChild); }
    if (!p.marks) { return; }
    var wh = size(p);
    p.svg.setAttribute("viewBox", "0 0 " + wh[0] + " " + wh[1]);
    var pts0 = p.marks.points || [];
    var eyes = pts0.length >= 2 ? Math.hypot(pts0[1][0] - pts0[0][0], pts0[1][1] - pts0[0][1]) : 0;
    var r = eyes > 0 ? eyes / 22 : Math.max(wh[0], wh[1]) / 160;  // same size once aligned
    if (p.marks.box) {
      var box = document.createElementNS(SVG, "rect");
      box.setAttribute("class", "lm-box");
      ["x", "y", "width", "height"].forEach(function (k, i) { box.setAttribute(k, p.marks.box[i]); });
      p.svg.appendChild(box);
    }
    var pts = p.marks.points || [];
    if (pts.length >= 2) {
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("class", "lm-line");
      line.setAttribute("x1", pts[0][0]); line.setAttribute("y1", pts[0][1]);
      line.setAttribute("x2", pts[1][0]); line.setAttribute("y2", pts[1][1]);
      p.svg.appendChild(line);
    }
    pts.forEach(function (pt) {
      var c = document.createElementNS(SVG, "circle");
      c.setAttribute("class", "lm");
      c.setAttribute("cx", pt[0]); c.setAttribute("cy", pt[1]); c.setAttribute("r", r);
      p.svg.appendChild(c);
    });
  }

  function wire(p) {
    p.vp.addEventListener("wheel", function (e) {
      e.preventDefault();
      var rect = p.vp.getBoundingClientRect();
      zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    var drag = null;
    p.vp.addEventListener("pointerdown", function (e) {
      drag = { x: e.clientX, y: e.clientY };
      p.vp.setPointerCapture(e.pointerId);
    });
    p.vp.addEventListener("pointermove", function (e) {
      if (!drag) { return; }
      view.tx += e.clientX - drag.x; view.ty += e.clientY - drag.y;
      drag = { x: e.clientX, y: e.clientY };
      render();
    });
    var stop = function () { drag = null; };
    p.vp.addEventListener("pointerup", stop);
    p.vp.addEventListener("pointercancel", stop);
    p.vp.addEventListener("dblclick", function (e) {
      var rect = p.vp.getBoundingClientRect();
      zoomAt(STEP * STEP, e.clientX - rect.left, e.clientY - rect.top);
    });
    p.vp.addEventListener("keydown", function (e) {
      var c = centre(p), handled = true;
      if (e.key === "+" || e.key === "=") { zoomAt(STEP, c[0], c[1]); }
      else if (e.key === "-" || e.key === "_") { zoomAt(1 / STEP, c[0], c[1]); }
      else if (e.key === "0") { reset(); }
      else if (e.key === "ArrowLeft") { view.tx += PAN; render(); }
      else if (e.key === "ArrowRight") { view.tx -= PAN; render(); }
      else if (e.key === "ArrowUp") { view.ty += PAN; render(); }
      else if (e.key === "ArrowDown") { view.ty -= PAN; render(); }
      else { handled = false; }
      if (handled) { e.preventDefault(); }
    });
    p.img.addEventListener("load", render);
    drawMarks(p);
  }

  function select(n) {
    if (!candidates.length || n < 1 || n > candidates.length) { return; }
    current = n;
    var c = candidates[n - 1], p = panes[1];
    p.marks = c.marks;
    if (p.img.getAttribute("src") !== c.url) { p.img.src = c.url; }
    p.img.alt = "Candidate " + n;
    p.img.dataset.n = String(n);
    drawMarks(p);
    render();
    document.querySelectorAll(".cand-info").forEach(function (el) {
      el.hidden = el.dataset.n !== String(n);
    });
    document.querySelectorAll(".cand-nav .cand-link").forEach(function (el) {
      if (el.dataset.n === String(n)) { el.setAttribute("aria-current", "true"); }
      else { el.removeAttribute("aria-current"); }
    });
    document.querySelectorAll(".decisions tbody tr").forEach(function (row, i) {
      row.classList.toggle("current-row", i === n - 1);
    });
    var url = new URL(window.location.href);
    url.searchParams.set("c", String(n));
    window.history.replaceState(null, "", url.pathname + url.search);
  }

  document.querySelectorAll(".cand-link").forEach(function (link) {
    link.addEventListener("click", function (e) {
      e.preventDefault();
      select(parseInt(link.dataset.n, 10));
      var vp = document.getElementById("vp-candidate");
      if (link.closest(".decisions") && vp) { vp.scrollIntoView({ block: "center" }); }
    });
  });
  document.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      var c = centre(panes[0]);
      if (button.dataset.zoom === "in") { zoomAt(STEP, c[0], c[1]); }
      else if (button.dataset.zoom === "out") { zoomAt(1 / STEP, c[0], c[1]); }
      else { reset(); }
    });
  });
  var toggle = document.getElementById("toggle-marks");
  if (toggle) {
    toggle.addEventListener("change", function () {
      viewer.classList.toggle("show-marks", toggle.checked);
    });
  }
  var alignSelect = document.getElementById("align");
  if (alignSelect) {
    alignSelect.addEventListener("change", function () { align = alignSelect.value; reset(); });
  }
  panes.forEach(wire);
  window.addEventListener("resize", render);
  select(current);
  render();
})();
