// Starts Wagtail's chooser widgets from their data attributes (see sites/choosers.ScriptFreeChooser).
(function () {
  const start = () => {
    document.querySelectorAll("[data-mizani-chooser]:not([data-started])").forEach((element) => {
      element.dataset.started = "true";
      new window.Chooser(element.dataset.mizaniChooser, JSON.parse(element.dataset.options));
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
