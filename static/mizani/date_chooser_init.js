// Starts Wagtail's date, time and date-time pickers from their data attributes (see
// sites/templates/wagtailadmin/widgets/*_input.html), also in content swapped in later (listing filters).
(function () {
  const STARTERS = ["initDateChooser", "initTimeChooser", "initDateTimeChooser"];
  const start = (root) => {
    root.querySelectorAll("[data-mizani-date-chooser]:not([data-started])").forEach((marker) => {
      const starter = marker.dataset.mizaniDateChooser;
      if (!STARTERS.includes(starter) || typeof window[starter] !== "function") return;
      marker.dataset.started = "true";
      window[starter](marker.dataset.for, JSON.parse(marker.dataset.config));
    });
  };
  const watch = () => {
    start(document);
    new MutationObserver((changes) => {
      changes.forEach((change) => change.addedNodes.forEach((node) => {
        if (node.nodeType === Node.ELEMENT_NODE) start(node.parentElement || node);
      }));
    }).observe(document.body, { childList: true, subtree: true });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
  window.addEventListener("load", () => start(document));
})();
