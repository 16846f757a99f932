// The dashboards' charts: Chart.js (served from node_modules) draws every <canvas data-chart>
// from the JSON its page put in a json_script element, so the pages need no inline script.
(function () {
  "use strict";

  var COLORS = ["#0969da", "#cf222e", "#2da44e", "#8250df"];
  var ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

  function axis(title, extra) {
    var scale = { title: { display: true, text: title }, grid: { color: "#eaeef2" } };
    return Object.assign(scale, extra || {});
  }

  // Hour starts arrive as UTC instants: label them in the viewer's own time zone, and say which.
  function hours(spec) {
    var format = new Intl.DateTimeFormat(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    document.querySelectorAll("[data-time-zone]").forEach(function (el) {
      el.textContent = ZONE;
    });
    return {
      type: "bar",
      data: {
        labels: spec.hours.map(function (iso) {
          return format.format(new Date(iso));
        }),
        datasets: [{ label: spec.y_label, data: spec.counts, backgroundColor: COLORS[0] }],
      },
      options: {
        plugins: { legend: { display: false } },
        scales: {
          x: axis("hour starting (" + ZONE + ")", { ticks: { maxRotation: 0, autoSkip: true } }),
          y: axis(spec.y_label, { beginAtZero: true, ticks: { precision: 0 } }),
        },
      },
    };
  }

  // Best-of-N's N doubles: plot log2(N) on a linear axis and print N at the ticks given.
  function line(spec) {
    var x = spec.log2_x ? Math.log2 : function (v) { return v; };
    var shown = spec.log2_x ? function (v) { return String(Math.round(Math.pow(2, v))); } : String;
    var ticks = spec.x_ticks.map(x);
    var y = { ticks: {} };
    if (spec.y_range) {
      y.min = spec.y_range[0];
      y.max = spec.y_range[1];
    }
    return {
      type: "line",
      data: {
        datasets: spec.series.map(function (series, i) {
          return {
            label: series.name,
            data: series.points.map(function (p) { return { x: x(p[0]), y: p[1] }; }),
            borderColor: COLORS[i % COLORS.length],
            backgroundColor: COLORS[i % COLORS.length],
          };
        }),
      },
      options: {
        scales: {
          x: axis(spec.x_label, {
            type: "linear",
            afterBuildTicks: function (scale) {
              if (ticks.length) scale.ticks = ticks.map(function (v) { return { value: v }; });
            },
            ticks: { callback: function (v) { return shown(v); } },
          }),
          y: axis(spec.y_label, y),
        },
      },
    };
  }

  var BUILD = { hours: hours, line: line };

  function draw(root) {
    // A refresh swapped the old canvas out: Chart.js keeps every chart until destroyed.
    Object.values(window.Chart.instances).forEach(function (chart) {
      if (!chart.canvas.isConnected) chart.destroy();
    });
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (window.Chart.getChart(canvas)) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var config = BUILD[spec.type](spec);
      config.options.animation = false;
      config.options.maintainAspectRatio = false;
      new window.Chart(canvas, config);
      canvas.dataset.drawn = spec.type;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  // The campaign page's stats refresh (htmx) brings a new canvas every 30 s.
  document.addEventListener("htmx:load", function (event) {
    draw(event.target);
  });
})();
