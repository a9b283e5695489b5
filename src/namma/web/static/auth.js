// Login, second factor, and the account page. Tokens live in HttpOnly cookies; this script
// only ever sees the CSRF token, which it echoes in X-CSRF-Token on unsafe requests.
(function () {
  "use strict";

  function cookie(name) {
    const match = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return match ? decodeURIComponent(match.split("=")[1]) : null;
  }

  async function post(url, body) {
    const headers = { "Content-Type": "application/json" };
    const csrf = cookie("csrf_token");
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const response = await fetch(url, {
      method: "POST", headers, credentials: "same-origin", body: body ? JSON.stringify(body) : null,
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    return { status: response.status, data };
  }

  function say(text) {
    const el = document.getElementById("message");
    if (el) el.textContent = text || "";
  }

  function errorText(result) {
    return (result.data && result.data.error && result.data.error.message) || "Something went wrong.";
  }

  function show(id) {
    ["login-form", "totp-form", "enrol-form", "recovery"].forEach((f) => {
      const el = document.getElementById(f);
      if (el) el.hidden = f !== id;
    });
  }

  let challenge = null;

  async function handleLoginResult(result) {
    if (result.status === 200 && result.data.status === "ok") {
      if (result.data.recovery_codes) {
        const list = document.getElementById("recovery-codes");
        result.data.recovery_codes.forEach((c) => {
          const li = document.createElement("li"); li.textContent = c; list.appendChild(li);
        });
        show("recovery");
        return;
      }
      window.location.assign("/account");
    } else if (result.status === 200 && result.data.status === "totp_required") {
      challenge = result.data.challenge; say(""); show("totp-form");
      document.getElementById("code").focus();
    } else if (result.status === 200 && result.data.status === "totp_enrolment_required") {
      challenge = result.data.challenge;
      const enrol = await post("/api/auth/login/totp-enrol", { challenge });
      if (enrol.status !== 200) { say(errorText(enrol)); return; }
      document.getElementById("qr").innerHTML = enrol.data.qr_svg;
      document.getElementById("totp-secret").textContent = enrol.data.secret;
      say(""); show("enrol-form");
    } else {
      say(errorText(result));
    }
  }

  const loginForm = document.getElementById("login-form");
  if (loginForm) {
    loginForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      const result = await post("/api/auth/login", {
        login: document.getElementById("login").value,
        password: document.getElementById("password").value,
      });
      await handleLoginResult(result);
    });
    document.getElementById("totp-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = document.getElementById("code").value.trim();
      const body = /^\d{6}$/.test(value) ? { challenge, code: value } : { challenge, recovery_code: value };
      await handleLoginResult(await post("/api/auth/login/totp", body));
    });
    document.getElementById("enrol-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const code = document.getElementById("enrol-code").value.trim();
      await handleLoginResult(await post("/api/auth/login/totp-enrol/confirm", { challenge, code }));
    });
  }

  async function loadMe() {
    let response = await fetch("/api/auth/me", { credentials: "same-origin" });
    if (response.status === 401) {
      // The 15-minute access token ran out: try the refresh token once.
      const refreshed = await post("/api/auth/refresh");
      if (refreshed.status !== 200) { window.location.assign("/login"); return; }
      response = await fetch("/api/auth/me", { credentials: "same-origin" });
    }
    if (response.status !== 200) { window.location.assign("/login"); return; }
    const me = await response.json();
    document.getElementById("me-name").textContent = me.user.name;
    document.getElementById("me-role").textContent = me.user.role;
    document.getElementById("me-login").textContent = me.user.email || me.user.phone;
  }

  const account = document.getElementById("account-card");
  if (account) {
    loadMe();
    document.getElementById("refresh-button").addEventListener("click", async () => {
      const result = await post("/api/auth/refresh");
      say(result.status === 200 ? "Session refreshed." : errorText(result));
      if (result.status === 200) await loadMe();
    });
    document.getElementById("logout-button").addEventListener("click", async () => {
      const result = await post("/api/auth/logout");
      if (result.status === 204) window.location.assign("/login");
      else say(errorText(result));
    });
  }
})();
