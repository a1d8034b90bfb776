// Tollway console: light progressive enhancement. Every page works without it.
"use strict";
document.documentElement.classList.add("js");

function copyText(text, button) {
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1800);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text) && done());
  } else if (fallbackCopy(text)) {
    done();
  }
}

function fallbackCopy(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
  area.remove();
  return ok;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => {
      const target = document.querySelector(button.dataset.copy);
      if (target) copyText(target.value !== undefined ? target.value : target.textContent, button);
    });
  }
  for (const input of document.querySelectorAll("[data-select-all]")) {
    input.addEventListener("focus", () => input.select());
  }
  for (const select of document.querySelectorAll("[data-mode-select]")) {
    const help = document.getElementById(select.getAttribute("aria-describedby"));
    select.addEventListener("change", () => {
      const option = select.options[select.selectedIndex];
      if (help && option) help.textContent = option.dataset.description || "";
    });
  }
  for (const button of document.querySelectorAll("[data-reveal]")) {
    const target = document.getElementById(button.dataset.reveal);
    if (!target) continue;
    // Opens (never closes) the section, and puts the cursor in its first field.
    button.addEventListener("click", () => {
      target.removeAttribute("data-collapsed");
      button.setAttribute("aria-expanded", "true");
      target.scrollIntoView({ block: "start" });
      const first = target.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    });
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  for (const control of document.querySelectorAll("[data-autosubmit]")) {
    control.addEventListener("change", () => control.form && control.form.requestSubmit());
  }
});
