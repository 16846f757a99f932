/* Review page shortcuts: 1–9 accept that label, c edits a correction (focus its first step),
 * r rejects the task back to the queue. A shortcut only clicks the real button, so htmx posts
 * it with the page's CSRF header. Listens in the capture phase and claims the key, so the
 * labeling page's own shortcuts (label.js) stay out of the way.
 */
(function () {
  "use strict";

  function $(selector) { return document.querySelector(selector); }

  window.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    var target = e.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    if (!$("#review")) return;
    var button = null;
    if (/^[1-9]$/.test(e.key)) button = $('[data-accept="' + e.key + '"]');
    else if (e.key === "r") button = $('[data-action="reject"]');
    else if (e.key === "c") {
      var first = $('select[form="correct-form"]');
      if (first) { e.preventDefault(); e.stopPropagation(); first.focus(); }
      return;
    }
    if (!button) return;
    e.preventDefault();
    e.stopPropagation();
    if (!button.disabled) button.click();
  }, true);
})();
