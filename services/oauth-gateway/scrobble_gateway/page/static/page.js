// revenge-scrobble's page: the small script that makes its forms talk to the JSON API.
//
// Every change goes through the API (/api/v1/...) with the session cookie and the
// session's CSRF token in X-CSRF-Token (the token is in the page's <meta name="csrf-token">
// and in every form). Answers that fail are shown as the sentence the API gave, next to
// the form. No inline script anywhere: the Content-Security-Policy forbids it.
"use strict";

(function () {
  const CSRF_HEADER = "X-CSRF-Token";
  const FLASH_KEY = "revenge-scrobble.flash";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    headers[CSRF_HEADER] = csrfToken();
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let answer;
    try {
      answer = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, body: { detail: "The server could not be reached. Check your connection and try again." } };
    }
    let parsed = null;
    const text = await answer.text();
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        parsed = null;
      }
    }
    return { ok: answer.ok, status: answer.status, body: parsed, headers: answer.headers };
  }

  // --- messages -------------------------------------------------------------------------

  function flash(text) {
    const region = document.getElementById("flash");
    if (!region) return;
    region.textContent = "";
    const p = document.createElement("p");
    p.textContent = text;
    region.appendChild(p);
  }

  function reloadWith(text) {
    if (text) {
      try {
        sessionStorage.setItem(FLASH_KEY, text);
      } catch (err) {
        // Private windows may refuse storage; the page reloads without the message.
      }
    }
    window.location.reload();
  }

  function showStoredFlash() {
    let text = null;
    try {
      text = sessionStorage.getItem(FLASH_KEY);
      sessionStorage.removeItem(FLASH_KEY);
    } catch (err) {
      text = null;
    }
    if (text) flash(text);
  }

  function problemText(result) {
    if (result.status === 401) {
      return "Your session has ended. Sign in again with a new link.";
    }
    const body = result.body || {};
    if (typeof body.detail === "string" && body.detail) {
      return sentence(body.detail);
    }
    if (typeof body.title === "string" && body.title) {
      return sentence(body.title);
    }
    return "Something went wrong (HTTP " + result.status + "). Try again.";
  }

  function sentence(text) {
    const trimmed = text.trim();
    const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
    return /[.!?]$/.test(first) ? first : first + ".";
  }

  function clearErrors(form) {
    form.querySelectorAll(".form-error, .field-error").forEach((el) => {
      el.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function showProblem(form, result) {
    const box = form.querySelector(".form-error");
    if (box) box.textContent = problemText(result);
    const errors = (result.body && result.body.errors) || [];
    errors.forEach((error) => {
      const input = form.querySelector('[name="' + CSS.escape(String(error.field)) + '"]');
      if (!input) return;
      input.setAttribute("aria-invalid", "true");
      const slot = input.id ? document.getElementById(input.id + "-error") : null;
      if (slot) slot.textContent = sentence(String(error.message));
    });
    if (result.status === 401) {
      const link = document.createElement("a");
      link.href = "/sign-in";
      link.textContent = " Sign in";
      if (box) box.appendChild(link);
    }
  }

  // --- forms -> JSON ----------------------------------------------------------------------

  function setPath(target, name, value) {
    const parts = name.split(".");
    let here = target;
    for (let i = 0; i < parts.length - 1; i += 1) {
      if (typeof here[parts[i]] !== "object" || here[parts[i]] === null) here[parts[i]] = {};
      here = here[parts[i]];
    }
    here[parts[parts.length - 1]] = value;
  }

  function formBody(form) {
    const body = {};
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach((field) => {
      if (field.name === "csrf_token" || field.disabled) return;
      const type = field.getAttribute("data-type") || "";
      let value;
      if (field.type === "checkbox") {
        value = field.checked;
      } else if (type === "int") {
        if (field.value.trim() === "") return;
        value = Number(field.value);
      } else if (type === "lines") {
        value = field.value.split("\n").map((s) => s.trim()).filter((s) => s !== "");
      } else {
        if (field.value === "" && field.hasAttribute("data-optional")) return;
        value = field.value;
      }
      setPath(body, field.name, value);
    });
    return body;
  }

  async function submitForm(form) {
    clearErrors(form);
    const method = form.getAttribute("data-method") || "POST";
    const url = form.getAttribute("data-url");
    const then = form.getAttribute("data-then") || "reload";
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => {
      b.disabled = true;
    });
    try {
      const body = method === "DELETE" ? undefined : formBody(form);
      const result = await api(method, url, body);
      if (!result.ok) {
        showProblem(form, result);
        return;
      }
      await AFTER[then](form, result);
    } finally {
      buttons.forEach((b) => {
        b.disabled = false;
      });
    }
  }

  function safeUrl(text) {
    try {
      const url = new URL(text, window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  const AFTER = {
    reload: async function (form) {
      reloadWith(form.getAttribute("data-done"));
    },
    // A browser sign-in: the answer set the cookie that binds the flow to this browser;
    // the browser now goes to the service and comes back to this page.
    authorize: async function (form, result) {
      const url = safeUrl(result.body && result.body.authorization_url);
      if (!url) {
        showProblem(form, { status: 502, body: { detail: "The server did not give a sign-in address" } });
        return;
      }
      window.location.assign(url);
    },
    device: async function (form, result) {
      await deviceFlow(form, result.body);
    },
    secret: async function (form, result) {
      showSecret(form, result.body);
    },
  };

  // --- Trakt device code ------------------------------------------------------------------

  async function deviceFlow(form, started) {
    const panel = form.parentElement.querySelector(".device-panel");
    const link = panel.querySelector("a.verification");
    const status = panel.querySelector(".device-status");
    const url = safeUrl(started.verification_url);
    if (!url) {
      showProblem(form, { status: 502, body: { detail: "Trakt did not give an activation address" } });
      return;
    }
    link.href = url;
    link.textContent = url;
    panel.querySelector(".code").textContent = started.user_code;
    panel.hidden = false;
    status.textContent = "Waiting for you to enter the code and approve…";
    form.hidden = true;
    let wait = Math.max(1, Number(started.interval) || 5) * 1000;
    const until = Date.now() + Math.max(1, Number(started.expires_in) || 600) * 1000;
    const pollUrl = form.getAttribute("data-poll-url");
    while (Date.now() < until) {
      await sleep(wait);
      const result = await api("POST", pollUrl, { device_code: started.device_code });
      if (result.status === 202) {
        if (result.headers && result.headers.get("Retry-After")) wait += 1000;
        continue;
      }
      if (result.ok) {
        const name = result.body && result.body.external_user_name;
        reloadWith(name ? "Trakt is connected as " + name + "." : "Trakt is connected.");
        return;
      }
      status.textContent = problemText(result);
      form.hidden = false;
      return;
    }
    status.textContent = "The code expired before it was approved. Start again.";
    form.hidden = false;
  }

  // --- media servers: the webhook URL, shown once -------------------------------------------

  function showSecret(form, source) {
    const host = form.closest("[data-secret-host]") || document;
    const panel = host.querySelector(".secret-panel");
    const input = panel.querySelector("input.webhook-url");
    input.value = source.webhook_url;
    panel.querySelectorAll("[data-kind-steps]").forEach((steps) => {
      steps.hidden = steps.getAttribute("data-kind-steps") !== source.kind;
    });
    panel.hidden = false;
    input.focus();
    input.select();
  }

  async function copyFrom(button) {
    const target = document.getElementById(button.getAttribute("data-copy"));
    const status = button.parentElement.querySelector(".copy-status");
    const text = target.value !== undefined ? target.value : target.textContent;
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (err) {
      target.focus();
      if (target.select) target.select();
      copied = document.execCommand && document.execCommand("copy");
    }
    if (status) status.textContent = copied ? "Copied." : "Select the text and copy it.";
  }

  // --- parts of a page that refresh themselves --------------------------------------------

  function refreshing(element) {
    const url = element.getAttribute("data-refresh-url");
    const every = Math.max(1, Number(element.getAttribute("data-refresh-every")) || 10) * 1000;
    let last = element.innerHTML;
    async function tick() {
      if (element.querySelector("[data-refresh-stop]")) return;
      try {
        const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (answer.ok) {
          const html = await answer.text();
          if (html !== last) {
            // Our own server's fragment, escaped by its templates; no scripts run from it.
            element.innerHTML = html;
            last = html;
            localTimes(element);
          }
        }
      } catch (err) {
        // Offline for a moment: try again at the next tick.
      }
      setTimeout(tick, every);
    }
    setTimeout(tick, every);
  }

  // --- times in the reader's own zone -----------------------------------------------------

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;
      el.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      el.title = el.getAttribute("datetime");
    });
  }

  // --- wiring -----------------------------------------------------------------------------

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-url")) return;
    event.preventDefault();
    submitForm(form);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (button) copyFrom(button);
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.documentElement.classList.add("js");
    showStoredFlash();
    localTimes(document);
    document.querySelectorAll("[data-refresh-url]").forEach(refreshing);
  });
})();
