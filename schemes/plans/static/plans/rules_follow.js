// Rule fields that follow a select of their form as it is chosen, before the form is saved (a plan's
// type; a payment plan's benefit plan): each builder gets the rules subject of the chosen value (for
// its live count) and its fields (for its field lists). The form (rules_follow in
// schemes/plans/forms.py) gives each such textarea data-rules-follow (the select's name) and
// data-rules-subjects: {"<value>": {"subject": ..., "fields": "[...]"}}.
(() => {
  "use strict";

  function follow(textarea, select) {
    const chosen = JSON.parse(textarea.dataset.rulesSubjects)[select.value];
    const root = textarea.closest("[data-rule-builder]");
    if (!chosen || !root || root.dataset.subject === chosen.subject) return;
    root.dataset.subject = chosen.subject;
    root.dataset.fields = chosen.fields;
    // The builder (static/rules/rule_builder.js) re-reads its fields on this event; the input event
    // checks the rule again, so the live count and any unknown field follow the choice.
    root.dispatchEvent(new CustomEvent("rules:subject-changed"));
    textarea.dispatchEvent(new Event("input"));
  }

  function start() {
    for (const textarea of document.querySelectorAll("textarea[data-rules-follow]")) {
      const select = textarea.form?.querySelector(`select[name="${textarea.dataset.rulesFollow}"]`);
      if (!select) continue;
      select.addEventListener("change", () => follow(textarea, select));
      follow(textarea, select); // a choice the browser kept (back, reload) before this ran
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
