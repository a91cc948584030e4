// Draws every dashboard figure: its Plotly JSON sits in a <script type="application/json"> data element
// (never executed) named by the plot's data-figure attribute. Loaded after the self-hosted plotly.js.
(function () {
  "use strict";

  var DEFAULT_CONFIG = { responsive: true, displaylogo: false, showSendToCloud: false };

  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function draw() {
    if (!window.Plotly) {
      return;
    }
    var config = readJson("mizani-plotly-config") || DEFAULT_CONFIG;
    var plots = document.querySelectorAll("[data-figure]");
    var resizer = window.ResizeObserver
      ? new ResizeObserver(function (entries) {
          entries.forEach(function (entry) {
            if (entry.target.classList.contains("js-plotly-plot")) {
              window.Plotly.Plots.resize(entry.target);
            }
          });
        })
      : null;
    plots.forEach(function (plot) {
      var figure = readJson(plot.getAttribute("data-figure"));
      if (!figure) {
        return;
      }
      window.Plotly.newPlot(plot, figure.data || [], figure.layout || {}, config);
      if (resizer) {
        // The admin's sidebar opens and closes without a window resize: follow the plot's own width.
        resizer.observe(plot);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
