// The segment rule builder (subscribers.admin_forms.RulesWidget). The rules live as JSON in the
// form's textarea; this draws them as rows of field / operator / value (what each field offers
// comes from the server's schema, subscribers.segments.schema()), with "all"/"any" and one level
// of groups, writes every change back to the textarea, and asks the preview view for the live
// count and a sample. The server checks everything again: this only makes it easy to build.
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function select(options, value, label) {
    var node = el("select", { "aria-label": label });
    options.forEach(function (option) {
      var item = el("option", { value: String(option[0]), text: option[1] });
      if (String(option[0]) === String(value)) item.selected = true;
      node.appendChild(item);
    });
    return node;
  }

  function Builder(root) {
    this.root = root;
    this.input = root.querySelector("[data-rules-input]");
    this.rows = root.querySelector("[data-builder-rows]");
    this.preview = root.querySelector("[data-preview]");
    this.schema = JSON.parse(root.querySelector("script[type='application/json']").textContent);
    this.text = this.schema.text;
    this.timer = null;
    this.request = 0;
    try {
      this.state = JSON.parse(this.input.value || "{}");
    } catch (error) {
      return; // not JSON (an earlier post): leave the textarea and its error as they are
    }
    if (!this.state || !Array.isArray(this.state.rules)) this.state = { match: "all", rules: [] };
    if (!this.state.rules.length) this.state.rules.push(this.newRule());
    this.input.hidden = true;
    this.render();
  }

  Builder.prototype.newRule = function () {
    var field = Object.keys(this.schema.fields)[0];
    return { field: field, op: Object.keys(this.schema.fields[field].operators)[0], name: "", value: "" };
  };

  Builder.prototype.changed = function (redraw) {
    this.input.value = JSON.stringify(this.state);
    if (redraw) this.render();
    clearTimeout(this.timer);
    this.timer = setTimeout(this.count.bind(this), 400);
  };

  Builder.prototype.matchSelect = function (group) {
    var self = this;
    var matches = Object.keys(this.schema.matches).map(function (key) { return [key, self.schema.matches[key]]; });
    var node = select(matches, group.match, this.text.match_prefix);
    node.addEventListener("change", function () { group.match = node.value; self.changed(false); });
    return node;
  };

  Builder.prototype.valueInput = function (rule, kind) {
    var self = this;
    var node;
    var choices = this.schema.choices[kind];
    if (choices) {
      if (rule.value === "" || rule.value === undefined) rule.value = choices.length ? choices[0][0] : "";
      node = select(choices, rule.value, this.text.value);
    } else {
      var types = { date: "date", count: "number", recent: "number" };
      node = el("input", { type: types[kind] || "text", "aria-label": this.text.value, value: rule.value === undefined ? "" : rule.value });
      if (kind === "count" || kind === "recent") node.setAttribute("min", "1");
      if (kind === "number") node.setAttribute("inputmode", "decimal");
    }
    node.addEventListener(node.tagName === "SELECT" ? "change" : "input", function () {
      rule.value = node.tagName === "SELECT" && kind === "list" ? Number(node.value) : node.value;
      self.changed(false);
    });
    return node;
  };

  Builder.prototype.ruleRow = function (rule, owner, index) {
    var self = this;
    var fields = this.schema.fields;
    var field = fields[rule.field] || fields[Object.keys(fields)[0]];
    var fieldSelect = select(Object.keys(fields).map(function (key) { return [key, fields[key].label]; }), rule.field, this.text.field);
    fieldSelect.addEventListener("change", function () {
      owner.rules[index] = self.newRule();
      owner.rules[index].field = fieldSelect.value;
      owner.rules[index].op = Object.keys(fields[fieldSelect.value].operators)[0];
      self.changed(true);
    });
    var ops = Object.keys(field.operators).map(function (key) { return [key, field.operators[key].label]; });
    var opSelect = select(ops, rule.op, this.text.operator);
    opSelect.addEventListener("change", function () {
      var before = field.operators[rule.op] && field.operators[rule.op].value;
      rule.op = opSelect.value;
      if (field.operators[rule.op].value !== before) rule.value = "";
      self.changed(true);
    });
    var parts = [fieldSelect];
    if (field.named) {
      var name = el("input", { type: "text", "aria-label": this.text.attribute_name, placeholder: this.text.attribute_name, value: rule.name || "" });
      name.addEventListener("input", function () { rule.name = name.value; self.changed(false); });
      parts.push(name);
    }
    parts.push(opSelect);
    var kind = field.operators[rule.op] && field.operators[rule.op].value;
    if (kind) parts.push(this.valueInput(rule, kind));
    else delete rule.value;
    parts.push(this.removeButton(owner, index));
    return el("li", { class: "segment-builder__rule" }, parts);
  };

  Builder.prototype.removeButton = function (owner, index) {
    var self = this;
    var button = el("button", { type: "button", class: "button button-small button-secondary", text: this.text.remove });
    button.addEventListener("click", function () { owner.rules.splice(index, 1); self.changed(true); });
    return button;
  };

  Builder.prototype.addButton = function (label, owner, make) {
    var self = this;
    var button = el("button", { type: "button", class: "button button-small button-secondary", text: label });
    button.addEventListener("click", function () { owner.rules.push(make()); self.changed(true); });
    return button;
  };

  Builder.prototype.group = function (group, nested, owner, index) {
    var self = this;
    var list = el("ul", { class: "segment-builder__rules" });
    group.rules.forEach(function (item, position) {
      if (item && Array.isArray(item.rules)) list.appendChild(el("li", { class: "segment-builder__group" }, [self.group(item, true, group, position)]));
      else list.appendChild(self.ruleRow(item || self.newRule(), group, position));
    });
    var heading = nested
      ? el("p", {}, [document.createTextNode(this.text.group_prefix + " "), this.matchSelect(group), document.createTextNode(" " + this.text.match_suffix)])
      : el("p", {}, [document.createTextNode(this.text.match_prefix + " "), this.matchSelect(group), document.createTextNode(" " + this.text.match_suffix)]);
    var actions = [this.addButton(this.text.add_rule, group, this.newRule.bind(this))];
    if (!nested) actions.push(this.addButton(this.text.add_group, group, function () { return { match: "any", rules: [self.newRule()] }; }));
    else actions.push(this.removeButton(owner, index));
    return el("div", { class: nested ? "segment-builder__nested" : "" }, [heading, list, el("p", { class: "segment-builder__actions" }, actions)]);
  };

  Builder.prototype.render = function () {
    this.rows.replaceChildren(this.group(this.state, false));
    this.changed(false);
  };

  Builder.prototype.count = function () {
    var self = this;
    var form = this.root.closest("form");
    var token = form && form.querySelector("[name=csrfmiddlewaretoken]");
    var body = new FormData();
    body.append("rules", this.input.value);
    var number = ++this.request;
    this.preview.textContent = this.text.counting;
    fetch(this.root.dataset.previewUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": token ? token.value : "" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (number !== self.request) return; // an older answer arriving late
        self.show(data);
      })
      .catch(function () { if (number === self.request) self.preview.textContent = self.text.failed; });
  };

  Builder.prototype.show = function (data) {
    var parts = [];
    if (data.errors && data.errors.length) {
      parts.push(el("ul", { class: "error-message" }, data.errors.map(function (message) { return el("li", { text: message }); })));
    } else {
      var count = Number(data.count).toLocaleString();
      parts.push(el("p", { class: "segment-builder__count", "data-count": String(data.count), text: this.text.count.replace("%(count)s", count) }));
      if (data.sample && data.sample.length) {
        parts.push(el("p", { text: this.text.sample }));
        parts.push(el("ul", {}, data.sample.map(function (item) {
          return el("li", {}, [el("a", { href: item.url, text: item.name ? item.name + " <" + item.email + ">" : item.email })]);
        })));
      }
    }
    this.preview.replaceChildren.apply(this.preview, parts);
  };

  function start() {
    document.querySelectorAll("[data-segment-builder]").forEach(function (root) { new Builder(root); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
