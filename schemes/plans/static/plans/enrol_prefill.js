// The enrolment form's rule box starts from the plan's rule for the chosen "Enrol as" status
// (EnrolmentForm gives the textarea data-status-select, the select's name, and data-status-rules:
// {"<status>": "<the plan's rule text>"}). Choosing another status puts that status's rule in the box
// while the box still holds the previous status's rule (or nothing): a rule the clerk wrote is kept.
(() => {
  "use strict";

  function start() {
    for (const textarea of document.querySelectorAll("textarea[data-status-rules]")) {
      const select = textarea.form?.querySelector(`select[name="${textarea.dataset.statusSelect}"]`);
      if (!select) continue;
      const rules = JSON.parse(textarea.dataset.statusRules);
      let previous = select.value;
      select.addEventListener("change", () => {
        const shown = textarea.value.trim();
        if (shown === "" || shown === (rules[previous] || "").trim()) {
          textarea.value = rules[select.value] || "";
          textarea.dispatchEvent(new Event("input")); // the builder checks it again (its live count)
        }
        previous = select.value;
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
