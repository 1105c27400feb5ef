/* Dashboard behaviour: draws the charts described by <canvas data-chart> elements (data from a json_script
   block), again after every HTMX swap, and wires copy buttons. Pages work without it. */
(function () {
  "use strict";

  var palette = ["#4f46e5", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#64748b"];
  var providerColours = { openai: "#10a37f", anthropic: "#d97757", google: "#4285f4", deepseek: "#4d6bfe" };

  function money(value) {
    var n = Number(value);
    if (n === 0) return "$0";
    if (Math.abs(n) >= 1) return "$" + n.toLocaleString(undefined, { maximumFractionDigits: 2 });
    if (Math.abs(n) >= 0.01) return "$" + n.toFixed(2);
    return "$" + n.toPrecision(2);
  }

  function shortDate(iso) {
    var d = new Date(iso + "T00:00:00Z");
    return d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  }

  function readData(canvas) {
    var source = document.getElementById(canvas.dataset.source);
    return source ? JSON.parse(source.textContent) : null;
  }

  var builders = {
    daily: function (data) {
      var d = data.daily;
      return {
        data: {
          labels: d.labels.map(shortDate),
          datasets: [
            { type: "bar", label: "Requests", data: d.requests, yAxisID: "y", backgroundColor: "rgba(79, 70, 229, 0.35)",
              borderRadius: 3, order: 2 },
            { type: "line", label: "Cost (USD)", data: d.cost, yAxisID: "y1", borderColor: "#f59e0b",
              backgroundColor: "#f59e0b", pointRadius: d.labels.length > 45 ? 0 : 2, tension: 0.25, order: 1 }
          ]
        },
        options: {
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { grid: { display: false }, ticks: { maxTicksLimit: 10 } },
            y: { beginAtZero: true, position: "left", title: { display: true, text: "Requests" },
                 ticks: { precision: 0 } },
            y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
                  title: { display: true, text: "Cost (USD)" }, ticks: { callback: money } }
          },
          plugins: { tooltip: { callbacks: { label: function (ctx) {
            return ctx.dataset.yAxisID === "y1" ? "Cost: " + money(ctx.raw) : "Requests: " + Number(ctx.raw).toLocaleString();
          } } } }
        }
      };
    },
    providers: function (data) {
      var p = data.providers;
      return {
        type: "doughnut",
        data: {
          labels: p.labels,
          datasets: [{ data: p.cost, backgroundColor: p.labels.map(function (name, i) {
            return providerColours[name] || palette[i % palette.length];
          }), borderWidth: 1 }]
        },
        options: {
          cutout: "62%",
          plugins: {
            legend: { position: "right" },
            tooltip: { callbacks: { label: function (ctx) { return ctx.label + ": " + money(ctx.raw); } } }
          }
        }
      };
    },
    budget: function (data) {
      var d = data.daily;
      return {
        type: "bar",
        data: { labels: d.labels.map(shortDate), datasets: [{ label: "Spend (USD)", data: d.cost,
          backgroundColor: "rgba(79, 70, 229, 0.6)", borderRadius: 3 }] },
        options: {
          scales: { x: { grid: { display: false } },
                    y: { beginAtZero: true, title: { display: true, text: "USD" }, ticks: { callback: money } } },
          plugins: { legend: { display: false },
                     tooltip: { callbacks: { label: function (ctx) { return "Spend: " + money(ctx.raw); } } } }
        }
      };
    }
  };

  /* Below this width an axis title has no room beside its ticks (it was drawn over them on a phone); the card's
     heading and the legend already say what each axis is. */
  var AXIS_TITLE_MIN_WIDTH = 480;

  function showAxisTitles(options, width) {
    Object.keys(options.scales || {}).forEach(function (id) {
      var title = options.scales[id].title;
      if (title && title.text) title.display = width >= AXIS_TITLE_MIN_WIDTH;
    });
  }

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") return;
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var build = builders[canvas.dataset.chart];
      var data = readData(canvas);
      if (!build || !data) return;
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      var config = build(data);
      config.type = config.type || "bar";
      config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
      showAxisTitles(config.options, canvas.parentElement.clientWidth);
      config.options.onResize = function (chart, size) { showAxisTitles(chart.options, size.width); };
      new window.Chart(canvas, config);
    });
  }

  function wireCopy(root) {
    (root || document).querySelectorAll("[data-copy]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.addEventListener("click", function () {
        var target = document.querySelector(button.dataset.copy);
        if (!target) return;
        target.select();
        var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 2000); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(target.value).then(done, function () { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  function init(root) { drawCharts(root); wireCopy(root); }

  if (window.Chart) {
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#475569";
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(document); });
})();
