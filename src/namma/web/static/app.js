// The pages' only script (htmx does the rest). No inline scripts anywhere: the CSP allows none.
// - Every htmx request carries the session's CSRF token (X-CSRF-Token, from the readable
//   csrf_token cookie); plain forms carry it in a hidden field.
// - A lapsed session is renewed without losing the page: an htmx request answered 401 renews
//   it (POST /api/auth/refresh, where the refresh cookie is sent) and sends the same request
//   again; a full page answered with the "renewing" page (data-session-refresh) renews and
//   reloads. If renewing fails, the sign-in page, with the way back in ?next=.
(function () {
  "use strict";

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  let renewing = null;
  function renewSession() {
    if (!renewing) {
      renewing = fetch("/api/auth/refresh", {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then((response) => response.ok)
        .catch(() => false)
        .finally(() => {
          setTimeout(() => { renewing = null; }, 0);
        });
    }
    return renewing;
  }

  function toSignIn(next) {
    const here = next || window.location.pathname + window.location.search;
    window.location.assign("/login?next=" + encodeURIComponent(here));
  }

  document.addEventListener("htmx:configRequest", (event) => {
    const token = cookie("csrf_token");
    if (token) event.detail.headers["X-CSRF-Token"] = token;
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status !== 401) return;
    event.detail.shouldSwap = false;
    const config = event.detail.requestConfig;
    const element = config.elt;
    if (element.dataset.sessionRetried) {
      delete element.dataset.sessionRetried;
      toSignIn();
      return;
    }
    renewSession().then((ok) => {
      if (!ok) { toSignIn(); return; }
      // The same request again, from the same element: a form sends what is typed in it now.
      element.dataset.sessionRetried = "1";
      const trigger = config.triggeringEvent ? config.triggeringEvent.type : null;
      htmx.trigger(element, trigger || (element.tagName === "FORM" ? "submit" : "click"));
    });
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const element = event.detail.elt;
    if (element && event.detail.xhr && event.detail.xhr.status !== 401) {
      delete element.dataset.sessionRetried;
    }
  });

  // A boosted page keeps <html lang> in step with the page it shows.
  document.addEventListener("htmx:afterSettle", () => {
    const main = document.getElementById("main");
    if (main && main.dataset.lang) document.documentElement.lang = main.dataset.lang;
  });

  function onLoad(root) {
    root.querySelectorAll("[data-print]").forEach((button) => {
      button.addEventListener("click", () => window.print());
    });
    const lapsed = root.querySelector("[data-session-refresh]");
    if (lapsed) {
      renewSession().then((ok) => {
        if (ok) window.location.reload();
        else window.location.assign(lapsed.dataset.sessionRefresh);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => onLoad(document));
  document.addEventListener("htmx:load", (event) => {
    if (event.detail.elt !== document.body) onLoad(event.detail.elt);
  });
})();
