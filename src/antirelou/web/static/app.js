// antirelou dashboard: blur, charts, live overview, reply preview. No build, no framework.
"use strict";

function reveal(el) { el.classList.toggle("revealed"); }

function chart(el, s) {
  // Bars: texts per step; line: new senders per step. Hand-written SVG, ~40 lines.
  var w = Math.max(200, el.clientWidth || 600), h = el.clientHeight || 180, pad = 22;
  var n = s.texts.length, lang = document.documentElement.lang || "fr";
  var max = Math.max(1, Math.max.apply(null, s.texts), Math.max.apply(null, s.new_senders));
  var bw = (w - pad) / Math.max(1, n);
  var y = function (v) { return h - pad - (v / max) * (h - 2 * pad); };
  var bars = "", pts = [];
  for (var i = 0; i < n; i++) {
    var x = pad + i * bw;
    if (s.texts[i] > 0) {
      bars += '<rect class="bar" x="' + x.toFixed(1) + '" y="' + y(s.texts[i]).toFixed(1) +
        '" width="' + Math.max(1, bw - 1).toFixed(1) + '" height="' + (h - pad - y(s.texts[i])).toFixed(1) + '"></rect>';
    }
    pts.push((x + bw / 2).toFixed(1) + "," + y(s.new_senders[i]).toFixed(1));
  }
  var label = function (iso) {
    var opts = {hour: "2-digit", minute: "2-digit", hour12: false, timeZone: el.dataset.zone || undefined};
    if (s.span !== "hour") { opts.weekday = "short"; }
    return new Date(iso).toLocaleString(lang, opts);
  };
  el.innerHTML = '<svg viewBox="0 0 ' + w + " " + h + '" width="' + w + '" height="' + h + '">' + bars +
    '<polyline class="line" points="' + pts.join(" ") + '"></polyline>' +
    '<text x="0" y="12">' + max + "</text>" +
    '<text x="' + pad + '" y="' + (h - 6) + '">' + (n ? label(s.starts[0]) : "") + "</text>" +
    '<text text-anchor="end" x="' + w + '" y="' + (h - 6) + '">' + (n ? label(s.starts[n - 1]) : "") + "</text></svg>";
  var step = document.getElementById("chart-step");
  if (step) { step.textContent = "(" + s.step_label + ")"; }
}

function setText(id, value) { var el = document.getElementById(id); if (el) { el.textContent = value; } }

function banner(incidents) {
  document.querySelectorAll(".banner.live").forEach(function (b) { b.remove(); });
  if (document.getElementById("incident-banner")) { return; }
  incidents.forEach(function (inc) {
    var div = document.createElement("div");
    div.className = "banner live";
    div.id = "incident-banner";
    div.dataset.incident = inc.id;
    var a = document.createElement("a");
    a.href = "/dashboard/incidents/" + inc.id;
    a.textContent = inc.text;
    div.appendChild(a);
    var header = document.querySelector("header.top");
    header.parentNode.insertBefore(div, header.nextSibling);
  });
}

function refresh(root, span) {
  fetch("/api/overview?span=" + span, {credentials: "same-origin", headers: {"Accept": "application/json"}})
    .then(function (r) { if (r.status === 401) { location.href = "/login"; } return r.json(); })
    .then(function (o) {
      setText("texts-today", o.texts_today); setText("new-today", o.new_senders_today);
      setText("sent-today", o.replies_sent_today); setText("held-now", o.held_now);
      setText("refused-today", o.refused_today); setText("queued-now", o.queued_now);
      setText("spent-today", o.spent_today_label); setText("pot-left", o.pot_left_label);
      setText("days-left", o.days_left_label);
      var meter = document.getElementById("spend-meter"); if (meter) { meter.value = o.spent_today_micros; }
      (o.provider_balances || []).forEach(function (b) {
        var amount = document.querySelector('.provider-balance[data-provider="' + b.provider + '"] .amount');
        if (amount) { amount.textContent = b.amount_label; }
      });
      o.lines.forEach(function (l) {
        var li = document.querySelector('#lines li[data-line="' + l.number + '"] .state');
        if (li) { li.textContent = l.state_label; }
      });
      if (o.incidents.length) { banner(o.incidents); }
      chart(document.getElementById("chart"), o.series);
    })
    .catch(function () { /* the next poll tries again */ });
}

function overview(root) {
  var span = "hour";
  var every = parseInt(root.dataset.poll, 10) || 5000;
  document.querySelectorAll(".span").forEach(function (b) {
    b.addEventListener("click", function () {
      span = b.dataset.span;
      document.querySelectorAll(".span").forEach(function (o) { o.classList.toggle("on", o === b); });
      refresh(root, span);
    });
  });
  setInterval(function () { if (!document.hidden) { refresh(root, span); } }, every);
}

function editor(box) {
  var area = box.querySelector(".reply-text"), timer = null;
  var q = function (c) { return box.querySelector(c); };
  var update = function () {
    fetch("/api/reply-preview?text=" + encodeURIComponent(area.value), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        q(".p-encoding").textContent = p.encoding; q(".p-units").textContent = p.units;
        q(".p-segments").textContent = p.segments; q(".p-cost").textContent = p.cost_per_reply.toFixed(4);
        q(".p-cost1000").textContent = p.cost_per_1000_senders.toFixed(2);
        q(".p-offending").textContent = p.offending.length ? p.offending_label + ": " + p.offending.join(" ") : "";
        q(".p-rewrite").textContent = p.gsm7_rewrite || "";
        q(".p-rewrite-box").hidden = !p.gsm7_rewrite;
      });
  };
  area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(update, 150); });
  var use = q(".use-rewrite");
  if (use) { use.addEventListener("click", function () { area.value = q(".p-rewrite").textContent; update(); }); }
}

function liveFeed(feed) {
  // The feed does not insert new texts by itself (an operator should not be ambushed by a
  // flood of insults): it says how many arrived, and a click shows them.
  var newest = parseInt(feed.dataset.newest, 10) || 0;
  setInterval(function () {
    if (document.hidden) { return; }
    fetch("/api/messages?limit=100", {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (page) {
        var count = page.messages.filter(function (m) { return m.id > newest; }).length;
        if (count) {
          setText("new-count", count >= 100 ? "100+" : count);
          document.getElementById("new-texts").hidden = false;
        }
      })
      .catch(function () { /* the next poll tries again */ });
  }, parseInt(feed.dataset.poll, 10) || 5000);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".blurred").forEach(function (el) {
    el.addEventListener("click", function () { reveal(el); });
    el.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); reveal(el); } });
  });
  var c = document.getElementById("chart");
  if (c && c.dataset.series) { chart(c, JSON.parse(c.dataset.series)); }
  var root = document.getElementById("overview");
  if (root) { overview(root); }
  document.querySelectorAll(".editor").forEach(editor);
  var feed = document.getElementById("feed");
  if (feed && feed.dataset.live === "1") { liveFeed(feed); }
});
