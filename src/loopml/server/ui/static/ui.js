// loopml web UI: charts, artifact previews and confirmations. No inline scripts (CSP).
"use strict";

(function () {
  var LAYOUT = { margin: { l: 50, r: 20, t: 30, b: 40 }, height: 280 };
  var CONFIG = { displaylogo: false, responsive: true };

  function metricUrl(runId, key) {
    return "/ui/api/runs/" + encodeURIComponent(runId) + "/metric?key=" +
      encodeURIComponent(key) + "&points=2000";
  }

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(url + ": " + r.status); }
      return r.json();
    });
  }

  function title(text) { return { text: text, font: { size: 14 } }; }

  function metricCharts() {
    document.querySelectorAll(".js-metric-chart").forEach(function (el) {
      var key = el.dataset.key;
      fetchJson(metricUrl(el.dataset.run, key)).then(function (d) {
        var note = d.total > d.steps.length ? " (" + d.steps.length + " of " + d.total + " points)" : "";
        Plotly.newPlot(el, [{ x: d.steps, y: d.values, mode: "lines", name: key }],
          Object.assign({ title: title(key + note), xaxis: { title: "step" } }, LAYOUT), CONFIG);
      }).catch(function (e) { el.textContent = String(e); });
    });
  }

  function compareData() {
    var node = document.getElementById("compare-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function compareCharts(data) {
    document.querySelectorAll(".js-compare-chart").forEach(function (el) {
      var key = el.dataset.key;
      Promise.all(data.runs.map(function (run) {
        return fetchJson(metricUrl(run.id, key)).then(function (d) {
          return { x: d.steps, y: d.values, mode: "lines", name: run.name };
        });
      })).then(function (traces) {
        Plotly.newPlot(el, traces, Object.assign({ title: title(key), xaxis: { title: "step" } }, LAYOUT), CONFIG);
      }).catch(function (e) { el.textContent = String(e); });
    });
  }

  function parallel(data) {
    var el = document.getElementById("parallel");
    if (!el || data.runs.length === 0) { return; }
    var dims = [];
    data.param_keys.forEach(function (k) {
      var raw = data.runs.map(function (r) { return r.params[k]; });
      var nums = raw.map(function (v) { return v === undefined ? NaN : Number(v); });
      if (nums.every(function (n) { return !isNaN(n); })) {
        dims.push({ label: k, values: nums });
      } else {
        var cats = Array.from(new Set(raw.map(function (v) { return v === undefined ? "" : v; }))).sort();
        dims.push({ label: k, values: raw.map(function (v) { return cats.indexOf(v === undefined ? "" : v); }),
          tickvals: cats.map(function (_, i) { return i; }), ticktext: cats });
      }
    });
    data.metric_keys.forEach(function (k) {
      dims.push({ label: k, values: data.runs.map(function (r) { return k in r.metrics ? r.metrics[k] : NaN; }) });
    });
    if (dims.length === 0) { el.textContent = "No params or metrics to plot."; return; }
    var last = data.metric_keys.length ? dims[dims.length - 1].values : data.runs.map(function (_, i) { return i; });
    Plotly.newPlot(el, [{ type: "parcoords", line: { color: last, colorscale: "Viridis", showscale: true }, dimensions: dims }],
      { margin: { l: 60, r: 60, t: 40, b: 20 }, height: 360 }, CONFIG);
  }

  function previews() {
    var out = document.getElementById("artifact-preview");
    document.querySelectorAll(".js-preview").forEach(function (button) {
      button.addEventListener("click", function () {
        fetch(button.dataset.src, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) { throw new Error("preview failed: " + r.status); }
          return r.text();
        }).then(function (text) {
          out.textContent = text.length > 200000 ? text.slice(0, 200000) + "\n…" : text;
          out.hidden = false;
        }).catch(function (e) { out.textContent = String(e); out.hidden = false; });
      });
    });
  }

  function confirms() {
    document.querySelectorAll("form.js-confirm").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm || "Are you sure?")) { event.preventDefault(); }
      });
    });
  }

  function seriesCharts(root) {
    (root || document).querySelectorAll(".js-series-chart").forEach(function (el) {
      var node = document.getElementById(el.dataset.source);
      if (!node) { return; }
      var spec = JSON.parse(node.textContent);
      var traces = spec.series.map(function (s) {
        return { x: spec.time ? s.x.map(function (t) { return new Date(t); }) : s.x, y: s.y, name: s.name,
          type: spec.kind === "bar" ? "bar" : "scatter", mode: "lines+markers" };
      });
      Plotly.react(el, traces, Object.assign({ title: title(spec.title), barmode: "stack" }, LAYOUT), CONFIG);
    });
  }

  // Sections marked data-live are fetched again every data-live-seconds (while the tab is
  // visible) and swapped in, charts redrawn: the server renders them, as on the first load.
  function liveSections() {
    var sections = document.querySelectorAll("[data-live]");
    var main = document.querySelector("[data-live-seconds]");
    if (!sections.length || !main) { return; }
    var seconds = Math.max(1, Number(main.dataset.liveSeconds) || 15);
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        sections.forEach(function (section) {
          var next = fresh.getElementById(section.id);
          if (!next || next.innerHTML === section.innerHTML) { return; }
          section.querySelectorAll(".js-plotly-plot").forEach(function (el) { Plotly.purge(el); });
          section.innerHTML = next.innerHTML;
          if (typeof Plotly !== "undefined") { seriesCharts(section); }
        });
      }).catch(function () { /* a missed refresh: the next one tries again */ });
    }, seconds * 1000);
  }

  function start() {
    previews();
    confirms();
    liveSections();
    if (typeof Plotly === "undefined") { return; }
    metricCharts();
    var data = compareData();
    if (data) { compareCharts(data); parallel(data); }
    seriesCharts();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
