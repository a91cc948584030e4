// The rule field (schemes/rules/forms.py, templates/rules/rule_builder.html). The textarea holds the
// rule's text and is what the form submits. The builder (rows of field / operator / value in AND/OR
// groups) writes its text there; every change asks the server for the live count. Text is quoted
// exactly as schemes/rules/text.py writes it: change both together
// (tests/schemes/rules/test_rule_builder_js.py compares them).
"use strict";

(function () {
  const DEBOUNCE_MS = 400;
  // Precedences as in schemes/rules/text.py: a part binding more loosely than its place is bracketed.
  const PRECEDENCE = { or: 1, and: 2, comparison: 4 };
  const COMPARISONS = [["==", "="], ["!=", "≠"], ["<", "<"], ["<=", "≤"], [">", ">"], [">=", "≥"]];
  const LISTS = [["in", "is one of"], ["not in", "is not one of"]];
  const OPERATORS = {
    number: [...COMPARISONS, ...LISTS],
    date: COMPARISONS,
    text: [COMPARISONS[0], COMPARISONS[1], ...LISTS],
    boolean: [["is", "is"]],
  };
  const CONJUNCTIONS = [["and", "all of these (and)"], ["or", "any of these (or)"]];
  const YES_NO = [["true", "yes"], ["false", "no"]];
  const ADD_BUTTON = ":scope > .rule-builder__actions > button"; // a group's "Add condition"
  const NOT_IN_BUILDER = "This rule has parts the builder cannot show (arithmetic, functions, conditions, " +
    "comparisons between fields, or list values with commas): edit it as text.";

  // --- rule text, as schemes/rules/text.py writes it -----------------------------------------------

  const ESCAPES = new Map([["\\", "\\\\"], ['"', '\\"'], ["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"]]);
  // The characters Python's str.isprintable() refuses (the space excepted): written as escapes.
  const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

  function quote(text) {
    let quoted = "";
    for (const ch of text) {
      if (ESCAPES.has(ch)) {
        quoted += ESCAPES.get(ch);
      } else if (ch === " " || !UNPRINTABLE.test(ch)) {
        quoted += ch;
      } else {
        const code = ch.codePointAt(0);
        const [prefix, width] = code < 0x100 ? ["\\x", 2] : code < 0x10000 ? ["\\u", 4] : ["\\U", 8];
        quoted += prefix + code.toString(16).padStart(width, "0");
      }
    }
    return `"${quoted}"`;
  }

  // A number in digits and a dot, as Python's format(Decimal(raw), "f"); null when it is not one.
  function numberText(raw) {
    const match = /^\s*(-?)([0-9]*)(?:\.([0-9]*))?\s*$/.exec(raw);
    if (!match || (match[2] === "" && !match[3])) return null;
    const [, sign, whole, fraction] = match;
    const digits = (whole.replace(/^0+(?=[0-9])/, "") || "0") + (fraction ? `.${fraction}` : "");
    return /[1-9]/.test(digits) ? sign + digits : digits; // the parser reads -0 as 0
  }

  function valueText(type, raw) {
    if (type === "number") return numberText(raw);
    if (type === "date") return /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(raw) ? `date("${raw}")` : null;
    if (type === "boolean") return raw === "true" || raw === "false" ? raw : null;
    return raw === "" ? null : quote(raw);
  }

  const isList = (operator) => operator === "in" || operator === "not in";
  // Values typed into one box, separated by commas.
  const splitValues = (raw) => raw.split(",").map((value) => value.trim()).filter((value) => value !== "");

  // The text of one condition, or null while it is incomplete. A row's value is a string, or for
  // "is one of" an array of strings.
  function rowText(row, fields) {
    const field = fields.get(row.field);
    if (!field) return null;
    if (isList(row.operator)) {
      const values = row.value.map((value) => valueText(field.type, value));
      return values.length && !values.includes(null) ? `${row.field} ${row.operator} [${values.join(", ")}]` : null;
    }
    const value = valueText(field.type, row.value);
    return value === null ? null : `${row.field} ${row.operator === "is" ? "==" : row.operator} ${value}`;
  }

  // {text, precedence} of a condition or group; null when nothing in it is complete.
  function itemPart(item, fields) {
    if (item.kind === "row") {
      const text = rowText(item, fields);
      return text === null ? null : { text, precedence: PRECEDENCE.comparison };
    }
    const parts = item.items.map((child) => itemPart(child, fields)).filter(Boolean);
    if (parts.length <= 1) return parts[0] || null;
    const own = PRECEDENCE[item.conjunction];
    // A nested group of the same conjunction keeps its brackets, as the parser keeps it nested.
    const text = parts.map((part) => (part.precedence > own ? part.text : `(${part.text})`))
      .join(` ${item.conjunction} `);
    return { text, precedence: own };
  }

  function modelText(group, fields) {
    const part = itemPart(group, fields);
    return part ? part.text : "";
  }

  // The conditions left out of the text: a field chosen but no usable value ("Age ≥ (no value)"). The
  // form submits them beside the text and the server refuses the rule while there are any: the rule
  // saved is never wider than the rows shown (schemes/rules/forms.py, INCOMPLETE).
  function incompleteRows(item, fields) {
    if (item.kind === "group") return item.items.flatMap((child) => incompleteRows(child, fields));
    if (item.field === "" || rowText(item, fields) !== null) return [];
    const field = fields.get(item.field);
    const operator = field && OPERATORS[field.type].find(([op]) => op === item.operator);
    const typed = Array.isArray(item.value) ? item.value.join(", ") : item.value;
    const value = typed.trim() === "" ? "(no value)" : `${typed} (not a valid value)`;
    return [`${field ? field.label : item.field} ${operator ? operator[1] : item.operator} ${value}`];
  }

  // --- AST JSON (schemes/rules/nodes.py to_json) -> builder model ------------------------------------

  const has = (node, key) => node !== null && typeof node === "object" && Object.hasOwn(node, key);
  const emptyRow = () => ({ kind: "row", field: "", operator: "", value: "" });
  const emptyGroup = (conjunction = "and") => ({ kind: "group", conjunction, items: [emptyRow()] });

  // The input value for a literal of the field's type, or null when no input of the builder holds it.
  function literalValue(node, field) {
    if (!has(node, "literal")) return null;
    const value = node.literal;
    const raw = field.type === "number" || field.type === "date" ? (node.type === field.type ? value : null)
      : field.type === "boolean" ? (typeof value === "boolean" ? String(value) : null)
      // A text box holds neither line breaks nor (usefully) nothing at all.
      : typeof value === "string" && !node.type && value !== "" && !/[\r\n]/.test(value) ? value : null;
    return field.choices?.length && !field.choices.includes(raw) ? null : raw;
  }

  function rowFromAst(node, fields) {
    const row = (field, operator, value) => ({ kind: "row", field, operator, value });
    const typeOf = (name) => fields.get(name)?.type;
    const offers = (field, operator) => OPERATORS[field.type].some(([op]) => op === operator);
    if (has(node, "field")) return typeOf(node.field) === "boolean" ? row(node.field, "is", "true") : null;
    if (node.unary === "not" && has(node.operand, "field")) {
      return typeOf(node.operand.field) === "boolean" ? row(node.operand.field, "is", "false") : null;
    }
    if (has(node, "binary") && has(node.left, "field") && fields.has(node.left.field)) {
      const field = fields.get(node.left.field);
      const operator = field.type === "boolean" ? (node.binary === "==" ? "is" : null) : node.binary;
      const value = literalValue(node.right, field);
      return offers(field, operator) && !isList(operator) && value !== null ? row(field.name, operator, value) : null;
    }
    if (has(node, "in") && has(node.in, "field") && fields.has(node.in.field)) {
      const field = fields.get(node.in.field);
      const operator = node.negated ? "not in" : "in";
      const values = node.values.map((value) => literalValue(value, field));
      // Typed into one box, values are split at commas and trimmed; ticked choices are taken whole.
      const listable = values.every((value) => value !== null
        && (field.choices?.length || (value === value.trim() && !value.includes(","))));
      return offers(field, operator) && listable ? row(field.name, operator, values) : null;
    }
    return null;
  }

  function itemFromAst(node, fields) {
    if (node.bool === "and" || node.bool === "or") {
      const items = node.values.map((value) => itemFromAst(value, fields));
      return items.includes(null) ? null : { kind: "group", conjunction: node.bool, items };
    }
    return rowFromAst(node, fields);
  }

  // The builder's model of a rule, or null when the builder cannot show it.
  function modelFromAst(ast, fields) {
    const item = itemFromAst(ast, fields);
    if (item === null) return null;
    return item.kind === "group" ? item : { kind: "group", conjunction: "and", items: [item] };
  }

  // Node runs the functions above against schemes/rules/text.py; a browser has no `module`.
  if (typeof module === "object" && module.exports) {
    module.exports = { quote, numberText, modelText, modelFromAst, incompleteRows };
    return;
  }

  // --- the page ----------------------------------------------------------------------------------------

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  function button(text, onClick) {
    const node = element("button", { type: "button", class: "button button-small button-secondary", text });
    node.addEventListener("click", onClick);
    return node;
  }

  function select(options, value) {
    const node = element("select", {}, options.map(([optionValue, text]) => element("option", { value: optionValue, text })));
    node.value = value;
    return node;
  }

  let controls = 0;
  const nextId = () => `rule-builder-control-${++controls}`;

  // A control with its own label (a label wrapping a select would also read out the chosen option).
  function labelled(text, control) {
    control.id = nextId();
    return element("div", { class: "rule-builder__control" },
      [element("label", { class: "rule-builder__label", for: control.id, text }), control]);
  }

  function csrfToken(root) {
    const input = root.closest("form")?.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((item) => item.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : "";
  }

  class RuleBuilder {
    constructor(root) {
      this.root = root;
      this.textarea = root.querySelector("textarea");
      this.incomplete = root.querySelector("[data-incomplete]");
      this.builderArea = root.querySelector("[data-builder]");
      this.modes = root.querySelector("[data-modes]");
      this.message = root.querySelector("[data-message]");
      this.count = root.querySelector("[data-count]");
      this.fields = new Map(JSON.parse(root.dataset.fields).map((field) => [field.name, field]));
      this.elements = new Map(); // model item -> its element, rebuilt by each render
      this.model = emptyGroup();
      this.timer = null;
      this.pending = null;
      this.textarea.addEventListener("input", () => this.scheduleCheck());
      // The form gave the rule another subject (plans/rules_follow.js: a plan type chosen on the form).
      root.addEventListener("rules:subject-changed", () => {
        this.fields = new Map(JSON.parse(root.dataset.fields).map((field) => [field.name, field]));
        if (!this.builderArea) return;
        this.setMode("text");
        this.toBuilder({ quiet: true }); // back in the builder if it can show the rule with these fields
      });
      if (this.builderArea) {
        this.modes.hidden = false;
        this.modes.addEventListener("click", (event) => {
          const mode = event.target.closest("[data-mode]")?.dataset.mode;
          if (mode === "text") this.setMode("text");
          if (mode === "builder") this.toBuilder({ quiet: false });
        });
        this.toBuilder({ quiet: true }); // opens in the builder when it can show the rule
      } else {
        this.checkNow();
      }
    }

    setMode(mode) {
      const building = mode === "builder";
      this.builderArea.hidden = !building;
      this.textarea.readOnly = building; // the builder writes the text
      this.textarea.classList.toggle("rule-builder__text--written", building);
      this.writeIncomplete(); // in text mode, the text is the whole rule
      for (const modeButton of this.modes.querySelectorAll("[data-mode]")) {
        modeButton.setAttribute("aria-pressed", String(modeButton.dataset.mode === mode));
      }
    }

    async toBuilder({ quiet }) {
      const text = this.textarea.value;
      if (!text.trim()) {
        this.model = emptyGroup();
        this.render();
        this.setMode("builder");
        this.showResult({ ok: true, count: null });
        return;
      }
      const result = await this.request(text);
      if (result === null || text !== this.textarea.value) return; // superseded by newer typing
      this.showResult(result);
      if (!result.ok) return; // the error is shown; the text stays editable
      const model = modelFromAst(result.ast, this.fields);
      if (model === null) {
        if (!quiet) this.say(NOT_IN_BUILDER);
        return;
      }
      this.model = model;
      this.render();
      this.setMode("builder");
    }

    // --- the builder's elements ----------------------------------------------------------------------

    render(focus = null) {
      this.elements = new Map();
      this.builderArea.replaceChildren(this.groupElement(this.model, null));
      if (focus) this.elements.get(focus.item)?.querySelector(focus.selector)?.focus();
    }

    changed() {
      this.textarea.value = modelText(this.model, this.fields);
      this.writeIncomplete();
      this.scheduleCheck();
    }

    // Submitted only while the builder shows incomplete conditions (a filter's link stays clean).
    writeIncomplete() {
      const rows = this.builderArea.hidden ? [] : incompleteRows(this.model, this.fields);
      this.incomplete.value = rows.length ? JSON.stringify(rows) : "";
      this.incomplete.disabled = !rows.length;
    }

    groupElement(group, parent) {
      const items = element("div", { class: "rule-builder__items" });
      for (const item of group.items) {
        items.append(item.kind === "group" ? this.groupElement(item, group) : this.rowElement(item, group));
      }
      const conjunction = select(CONJUNCTIONS, group.conjunction);
      conjunction.addEventListener("change", () => {
        group.conjunction = conjunction.value;
        this.changed();
      });
      const add = (item) => {
        group.items.push(item);
        this.render({ item: item.kind === "group" ? item.items[0] : item, selector: "select" });
        this.changed();
      };
      const actions = element("div", { class: "rule-builder__actions" }, [
        button("Add condition", () => add(emptyRow())),
        button("Add group", () => add(emptyGroup(group.conjunction === "and" ? "or" : "and"))),
      ]);
      if (parent) {
        actions.append(button("Remove group", () => {
          parent.items.splice(parent.items.indexOf(group), 1);
          this.render({ item: parent, selector: ADD_BUTTON });
          this.changed();
        }));
      }
      const legend = element("legend", { class: "rule-builder__legend", text: parent ? "Group" : "Conditions" });
      const node = element("fieldset", { class: "rule-builder__group" },
        [legend, labelled("Match", conjunction), items, actions]);
      this.elements.set(group, node);
      return node;
    }

    rowElement(row, group) {
      const spec = this.fields.get(row.field);
      const fieldOptions = [["", "Choose a field"], ...[...this.fields.values()].map((f) => [f.name, f.label])];
      const field = select(fieldOptions, row.field);
      const operator = select(spec ? OPERATORS[spec.type] : [["", "Choose a field first"]], row.operator);
      operator.disabled = !spec;
      const value = this.valueControl(row, spec);
      field.addEventListener("change", () => {
        const chosen = this.fields.get(field.value);
        Object.assign(row, { field: field.value, operator: chosen ? OPERATORS[chosen.type][0][0] : "",
                             value: chosen?.type === "boolean" ? "true" : "" });
        this.replaceRow(row, group, "[data-part=field] select");
        this.changed();
      });
      operator.addEventListener("change", () => {
        if (isList(operator.value) !== isList(row.operator)) row.value = isList(operator.value) ? [] : "";
        row.operator = operator.value;
        this.replaceRow(row, group, "[data-part=operator] select");
        this.changed();
      });
      const remove = button("Remove condition", () => {
        group.items.splice(group.items.indexOf(row), 1);
        this.render({ item: group, selector: ADD_BUTTON });
        this.changed();
      });
      const node = element("div", { class: "rule-builder__row" }, [
        element("div", { class: "rule-builder__part", "data-part": "field" }, [labelled("Field", field)]),
        element("div", { class: "rule-builder__part", "data-part": "operator" }, [labelled("Operator", operator)]),
        element("div", { class: "rule-builder__part rule-builder__part--value" }, [value]),
        remove,
      ]);
      this.elements.set(row, node);
      return node;
    }

    replaceRow(row, group, focusSelector) {
      const old = this.elements.get(row);
      const fresh = this.rowElement(row, group); // registers itself in this.elements
      old.replaceWith(fresh);
      fresh.querySelector(focusSelector)?.focus();
    }

    valueControl(row, spec) {
      const choices = spec?.choices?.length ? spec.choices : null;
      if (spec && isList(row.operator)) return choices ? this.choiceBoxes(row, choices) : this.listBox(row, spec);
      let control;
      if (!spec) {
        control = element("input", { type: "text", disabled: "" });
      } else if (spec.type === "boolean") {
        control = select(YES_NO, row.value);
      } else if (choices) {
        control = select([["", "Choose a value"], ...choices.map((choice) => [choice, choice])], row.value);
      } else {
        const type = { number: "number", date: "date" }[spec.type] || "text";
        control = element("input", type === "number" ? { type, step: "any" } : { type });
        control.value = row.value;
      }
      control.addEventListener(control.tagName === "SELECT" ? "change" : "input", () => {
        row.value = control.value;
        this.changed();
      });
      return labelled("Value", control);
    }

    // "is one of", typed: values separated by commas.
    listBox(row, spec) {
      const control = element("input", { type: "text", placeholder: spec.type === "number" ? "1, 2, 3" : "a, b, c" });
      if (spec.type === "number") control.inputMode = "decimal";
      control.value = row.value.join(", ");
      control.addEventListener("input", () => {
        row.value = splitValues(control.value);
        this.changed();
      });
      return labelled("Values, separated by commas", control);
    }

    // "is one of" a field's choices: one tick box each.
    choiceBoxes(row, choices) {
      const boxes = choices.map((choice) => {
        const box = element("input", { type: "checkbox", value: choice, id: nextId() });
        box.checked = row.value.includes(choice);
        return element("span", { class: "rule-builder__choice" }, [box, element("label", { for: box.id, text: choice })]);
      });
      const fieldset = element("fieldset", { class: "rule-builder__choices" },
        [element("legend", { class: "rule-builder__label", text: "Values" }), ...boxes]);
      fieldset.addEventListener("change", () => {
        row.value = [...fieldset.querySelectorAll("input:checked")].map((box) => box.value);
        this.changed();
      });
      return fieldset;
    }

    // --- checking and counting ----------------------------------------------------------------------

    scheduleCheck() {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.checkNow(), DEBOUNCE_MS);
    }

    async checkNow() {
      const text = this.textarea.value;
      if (!text.trim()) {
        this.pending?.abort();
        this.showResult({ ok: true, count: null });
        return;
      }
      const result = await this.request(text);
      if (result !== null && text === this.textarea.value) this.showResult(result);
    }

    // The server's answer (see schemes/rules/views.py), or null when a newer request replaced it.
    async request(text) {
      this.pending?.abort();
      const controller = new AbortController();
      this.pending = controller;
      const body = new URLSearchParams({ text, subject: this.root.dataset.subject, expect: this.root.dataset.expect });
      try {
        const response = await fetch(this.root.dataset.checkUrl, {
          method: "POST",
          body,
          signal: controller.signal,
          credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(this.root), "X-Requested-With": "XMLHttpRequest" },
        });
        if (!response.ok) {
          return { ok: false, position: null,
                   error: "The rule could not be checked: reload the page (your session may have ended)." };
        }
        return await response.json();
      } catch (error) {
        if (error.name === "AbortError") return null;
        return { ok: false, position: null, error: "The rule could not be checked: no connection to the server." };
      } finally {
        if (this.pending === controller) this.pending = null;
      }
    }

    showResult(result) {
      const invalid = !result.ok;
      this.textarea.setAttribute("aria-invalid", String(invalid));
      if (invalid) {
        const where = result.position === null ? "" : `At character ${result.position + 1}: `;
        this.say(where + result.error);
        this.count.textContent = "";
        return;
      }
      this.say(this.incompleteNote());
      this.count.textContent = result.count === null || result.count === undefined ? ""
        : `${this.root.dataset.subjectLabel} matching, in your locations: ${result.count}`;
    }

    // Rows with a field chosen but no usable value are not in the text: the form is refused with them.
    incompleteNote() {
      if (!this.builderArea || this.builderArea.hidden) return "";
      const incomplete = incompleteRows(this.model, this.fields).length;
      if (!incomplete) return "";
      return incomplete === 1 ? "1 condition is incomplete: give it a value or remove it before saving."
        : `${incomplete} conditions are incomplete: give each a value or remove it before saving.`;
    }

    say(text) {
      this.message.textContent = text;
      this.message.hidden = !text;
    }
  }

  function start() {
    document.querySelectorAll("[data-rule-builder]:not([data-rule-builder-started])").forEach((root) => {
      root.dataset.ruleBuilderStarted = "true";
      new RuleBuilder(root);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
