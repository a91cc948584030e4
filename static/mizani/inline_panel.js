// Starts Wagtail's InlinePanels from their data attributes (see templates/wagtailadmin/panels/inline_panel.html).
(function () {
  const start = () => {
    document.querySelectorAll("[data-mizani-inline-panel]:not([data-mizani-started])").forEach((element) => {
      element.dataset.mizaniStarted = "true";
      new window.InlinePanel(JSON.parse(element.dataset.mizaniInlinePanel));
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
