// The rule form's condition builder, without a round trip: "Add condition", "Add group"
// and "Remove" change the form in place. Without this script the same buttons post the
// form, and the server answers with the changed form (web/admin/rule_forms.py).
//
// Node paths: "c" is the root group, "c.0" its first child, "c.1.0" … A new node takes
// the number after its siblings' highest; the server orders children by that number.
(function () {
  "use strict";

  var form = document.getElementById("rule-form");
  var condTemplate = document.getElementById("tpl-cond");
  var groupTemplate = document.getElementById("tpl-group");
  if (!form || !condTemplate || !groupTemplate) {
    return;
  }

  var DOTTED = ["name", "value", "data-path"];
  var DASHED = ["id", "for", "aria-describedby"];

  function childrenList(group) {
    return group.querySelector(":scope > ol.cond-children");
  }

  function nextPath(group) {
    var path = group.getAttribute("data-path");
    var highest = -1;
    var items = childrenList(group).children;
    for (var i = 0; i < items.length; i++) {
      var node = items[i].querySelector(":scope > [data-path]");
      if (node) {
        var last = Number(node.getAttribute("data-path").split(".").pop());
        if (last > highest) {
          highest = last;
        }
      }
    }
    return path + "." + (highest + 1);
  }

  function instantiate(template, path) {
    var fragment = template.content.cloneNode(true);
    var dashed = path.replace(/\./g, "-");
    fragment.querySelectorAll("*").forEach(function (element) {
      DOTTED.forEach(function (name) {
        var value = element.getAttribute(name);
        if (value && value.indexOf("__PATH__") !== -1) {
          element.setAttribute(name, value.split("__PATH__").join(path));
        }
      });
      DASHED.forEach(function (name) {
        var value = element.getAttribute(name);
        if (value && value.indexOf("__PATH__") !== -1) {
          element.setAttribute(name, value.split("__PATH__").join(dashed));
        }
      });
    });
    return fragment;
  }

  function focusFirst(item) {
    var target = item && item.querySelector("select, input:not([type=hidden])");
    if (target) {
      target.focus();
    }
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[name=action]");
    if (!button || !form.contains(button)) {
      return;
    }
    var parts = button.value.split(":");
    var verb = parts[0];
    var path = parts[1];
    if (verb !== "add_cond" && verb !== "add_group" && verb !== "remove") {
      return;
    }
    var node = form.querySelector('[data-path="' + path + '"]');
    if (!node) {
      return; // let the server handle it
    }
    event.preventDefault();
    if (verb === "remove") {
      var item = node.closest("li.cond-item");
      var group = item.parentElement.closest("fieldset.cond-group");
      item.remove();
      var fallback = group && group.querySelector(":scope > .group-actions button");
      if (fallback) {
        fallback.focus();
      }
      return;
    }
    var newPath = nextPath(node);
    var fragment = instantiate(verb === "add_cond" ? condTemplate : groupTemplate, newPath);
    var list = childrenList(node);
    list.appendChild(fragment);
    focusFirst(list.lastElementChild);
  });
})();
