// The field agent's offline collection sheet (docs/pages.md, "The agent's phone app").
// - Every payment recorded gets crypto.randomUUID() as its client id at that moment and is
//   queued in IndexedDB (one database per user: "namma-agent-<user id>").
// - The queue is sent to POST /api/collection-sheet/post (idempotent per client id) on page load,
//   on the "online" event and by "Sync now"; each payment shows saved on phone / synced (receipt)
//   / rejected (the office's reason). A failed or interrupted send keeps the payment pending and
//   sends the same client id again, so the office records it once.
// - The service worker (/sw.js) keeps the app shell and the sheet page per user; signing out
//   deletes this user's database and pages (after a warning if payments are unsynced).
// No text lives here: the words come translated from #agent-messages (agent/base.html).
(function () {
  "use strict";

  const user = document.body.dataset.user;
  const wordsNode = document.getElementById("agent-messages");
  if (!user || !wordsNode) return;
  const words = wordsNode.dataset;
  const DB_PREFIX = "namma-agent-";
  const DB_NAME = DB_PREFIX + user;
  const USER_CACHE_PREFIX = "namma-user-";
  const DAY_MS = 24 * 60 * 60 * 1000;

  function say(text, values) {
    return String(text || "").replace(/%\((\w+)\)s/g, (_, key) => (values && key in values ? values[key] : ""));
  }

  function todayIndia() {
    // YYYY-MM-DD in India, whatever the phone's time zone.
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Kolkata" }).format(new Date());
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  // --- a small IndexedDB wrapper ----------------------------------------------------------------
  function request(r) {
    return new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  function done(t) {
    return new Promise((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  }
  function dbOpen(name) {
    const opening = indexedDB.open(name, 1);
    opening.onupgradeneeded = () => {
      const db = opening.result;
      db.createObjectStore("queue", { keyPath: "client_id" });
      db.createObjectStore("sheet", { keyPath: "loan_id" });
      db.createObjectStore("meta");
    };
    return request(opening);
  }
  let opened = null;
  function db() {
    if (!opened) opened = dbOpen(DB_NAME);
    return opened;
  }
  async function all(store) {
    const t = (await db()).transaction(store, "readonly");
    return request(t.objectStore(store).getAll());
  }
  async function put(store, value, key) {
    const t = (await db()).transaction(store, "readwrite");
    if (key === undefined) t.objectStore(store).put(value);
    else t.objectStore(store).put(value, key);
    return done(t);
  }
  async function putMany(store, values) {
    const t = (await db()).transaction(store, "readwrite");
    const s = t.objectStore(store);
    values.forEach((v) => s.put(v));
    return done(t);
  }

  // --- the sheet kept on the phone --------------------------------------------------------------
  async function sheetKeep() {
    const sheet = document.getElementById("sheet");
    if (!sheet) return;
    const lines = Array.from(document.querySelectorAll(".sheet-line")).map((line) => ({
      loan_id: line.dataset.loanId,
      loan_number: line.dataset.loanNumber,
      customer: line.dataset.customer,
      customer_id: line.dataset.customerId,
      village: line.dataset.village,
      expected: line.dataset.expected,
      overdue: line.dataset.overdue,
      due_today: line.dataset.dueToday,
    }));
    const t = (await db()).transaction(["sheet", "meta"], "readwrite");
    const s = t.objectStore("sheet");
    s.clear();
    lines.forEach((l) => s.put(l));
    t.objectStore("meta").put({ date: sheet.dataset.sheetDate, kept_at: new Date().toISOString() }, "sheet");
    return done(t);
  }

  // --- recording ----------------------------------------------------------------------------------
  const AMOUNT = /^\d{1,12}(\.\d{1,2})?$/;

  async function record(form) {
    const line = form.closest(".sheet-line");
    const error = form.querySelector("[data-error]");
    const amount = form.elements.amount.value.trim().replace(/,/g, "");
    const method = (form.querySelector("input[name=method]:checked") || {}).value || "cash";
    const reference = form.elements.reference.value.trim();
    error.textContent = "";
    form.elements.amount.removeAttribute("aria-invalid");
    if (!AMOUNT.test(amount) || Number(amount) <= 0) {
      error.textContent = words.amountInvalid;
      form.elements.amount.setAttribute("aria-invalid", "true");
      form.elements.amount.focus();
      return;
    }
    if (method !== "cash" && !reference) {
      error.textContent = words.referenceNeeded;
      form.elements.reference.focus();
      return;
    }
    const payment = {
      client_id: crypto.randomUUID(),
      loan_id: line.dataset.loanId,
      loan_number: line.dataset.loanNumber,
      customer: line.dataset.customer,
      amount: amount,
      method: method,
      reference: method === "cash" ? null : reference,
      collected_on: todayIndia(),
      recorded_at: new Date().toISOString(),
      state: "pending",
    };
    await put("queue", payment);
    await show();
    flush();
  }

  // --- syncing ------------------------------------------------------------------------------------
  let renewing = null;
  function renewSession() {
    if (!renewing) {
      renewing = fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => r.ok)
        .catch(() => false)
        .finally(() => setTimeout(() => { renewing = null; }, 0));
    }
    return renewing;
  }

  function send(pending) {
    return fetch("/api/collection-sheet/post", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": cookie("csrf_token") || "" },
      body: JSON.stringify({
        lines: pending.map((p) => ({
          loan_id: p.loan_id,
          amount: p.amount,
          collected_on: p.collected_on,
          method: p.method,
          reference: p.reference,
          client_id: p.client_id,
        })),
      }),
    });
  }

  function reason(line) {
    const error = (line.body && line.body.error) || {};
    const details = error.details;
    const server = error.message ? " (" + error.message + ")" : "";
    if (line.status === 404) return words.reasonMoved;
    if (line.status === 409 && details && details.status) return words.reasonClosed + server;
    if (line.status === 422 && Array.isArray(details) && details.some((d) => d.field === "amount")) {
      return words.reasonAmount + " " + (details.find((d) => d.field === "amount").message || "");
    }
    return (error.message || words.reasonOther);
  }

  let flushing = null;
  function flush() {
    if (!flushing) flushing = flushRun().finally(() => { flushing = null; });
    return flushing;
  }

  async function flushRun() {
    const pending = (await all("queue")).filter((p) => p.state === "pending");
    if (!pending.length) { await show(); return; }
    if (!navigator.onLine) { note(words.offline); await show(); return; }
    note(words.syncing);
    let response;
    try {
      response = await send(pending);
      if (response.status === 401 && (await renewSession())) response = await send(pending);
    } catch (e) {
      note(words.syncFailed);
      await show();
      return;
    }
    if (response.status === 401) { note(words.signin); return; }
    if (!response.ok) { note(words.syncFailed); await show(); return; }
    const answer = await response.json();
    const byId = new Map(pending.map((p) => [p.client_id, p]));
    const changed = [];
    for (const line of answer.lines || []) {
      const payment = byId.get(line.client_id);
      if (!payment) continue;
      if (line.status === 201) {
        payment.state = "synced";
        payment.receipt_number = line.receipt_number;
        payment.collection_id = line.body && line.body.collection ? line.body.collection.id : null;
      } else if (line.status >= 500 || line.status === 429) {
        continue; // the office could not answer for it: sent again later
      } else {
        payment.state = "rejected";
        payment.reason = reason(line);
        payment.status = line.status;
      }
      payment.synced_at = new Date().toISOString();
      changed.push(payment);
    }
    await putMany("queue", changed);
    note(say(words.syncedAt, { time: new Date().toLocaleTimeString(document.documentElement.lang + "-IN") }));
    await show();
  }

  // --- showing the queue --------------------------------------------------------------------------
  function note(text) {
    const node = document.getElementById("sync-note");
    if (node) node.textContent = text;
  }

  function money(amount) {
    const [whole, paise] = String(amount).split(".");
    const digits = whole.replace(/^0+(?=\d)/, "");
    const last3 = digits.slice(-3);
    const rest = digits.slice(0, -3).replace(/\B(?=(\d{2})+(?!\d))/g, ",");
    return "₹" + (rest ? rest + "," : "") + last3 + "." + ((paise || "") + "00").slice(0, 2);
  }

  function item(payment, withWho) {
    const li = document.createElement("li");
    li.className = "queued-item queued-" + payment.state;
    li.dataset.clientId = payment.client_id;
    li.dataset.state = payment.state;
    const what = document.createElement("span");
    what.className = "queued-what";
    what.textContent = (withWho ? payment.customer + " · " + payment.loan_number + " · " : "") +
      money(payment.amount) + " · " + (payment.method === "cash" ? words.cash : words.upi) +
      (payment.reference ? " " + payment.reference : "");
    const badge = document.createElement("span");
    badge.className = "badge badge-" + (payment.state === "synced" ? "paid" : payment.state === "rejected" ? "rejected" : "pending");
    badge.textContent = payment.state === "synced" ? words.synced : payment.state === "rejected" ? words.rejected : words.saved;
    li.append(what, " ", badge);
    if (payment.state === "synced" && payment.receipt_number) {
      const receipt = document.createElement(payment.collection_id ? "a" : "span");
      receipt.className = "queued-receipt";
      if (payment.collection_id) receipt.href = "/agent/collections/" + payment.collection_id;
      receipt.textContent = say(words.receipt, { number: payment.receipt_number });
      li.append(" ", receipt);
    }
    if (payment.state === "rejected") {
      const why = document.createElement("p");
      why.className = "queued-reason field-error";
      why.textContent = payment.reason || words.reasonOther;
      li.append(why);
    }
    return li;
  }

  async function show() {
    const queue = (await all("queue")).sort((a, b) => a.recorded_at.localeCompare(b.recorded_at));
    const pending = queue.filter((p) => p.state === "pending");
    document.querySelectorAll("#pending-count, [data-pending-mirror]").forEach((node) => {
      node.textContent = String(pending.length);
      node.dataset.pending = String(pending.length);
    });
    const list = document.getElementById("queue-list");
    if (list) {
      list.replaceChildren(...queue.map((p) => item(p, true)));
      if (!queue.length) {
        const empty = document.createElement("li");
        empty.className = "muted";
        empty.textContent = words.nothing;
        list.append(empty);
      }
    }
    document.querySelectorAll(".sheet-line").forEach((line) => {
      const mine = queue.filter((p) => p.loan_id === line.dataset.loanId);
      const target = line.querySelector("[data-queued]");
      if (target) target.replaceChildren(...mine.map((p) => item(p, false)));
      line.classList.toggle("sheet-line-recorded", mine.some((p) => p.state !== "rejected"));
    });
    await warn(pending);
  }

  async function warn(pending) {
    const box = document.getElementById("sync-warnings");
    if (!box) return;
    const messages = [];
    const sheet = document.getElementById("sheet");
    const today = todayIndia();
    if (sheet && sheet.dataset.sheetDate && sheet.dataset.sheetDate < today) {
      messages.push(say(words.sheetOld, { date: sheet.dataset.sheetDate }));
    }
    const old = Date.now() - DAY_MS;
    if (pending.some((p) => Date.parse(p.recorded_at) < old)) messages.push(words.unsyncedOld);
    box.replaceChildren(...messages.map((text) => {
      const p = document.createElement("p");
      p.className = "alert alert-warning";
      p.setAttribute("role", "alert");
      p.textContent = text;
      return p;
    }));
  }

  // --- one user's data only -----------------------------------------------------------------------
  async function hasPending(name) {
    const other = await dbOpen(name);
    try {
      const t = other.transaction("queue", "readonly");
      const rows = await request(t.objectStore("queue").getAll());
      return rows.some((p) => p.state === "pending");
    } finally {
      other.close();
    }
  }

  async function forgetOthers() {
    // Another person's pages never stay; their database goes unless it holds unsynced payments
    // (kept, never shown: it is named by their id, and goes when they sign out).
    if (window.caches) {
      for (const key of await caches.keys()) {
        if (key.startsWith(USER_CACHE_PREFIX) && key !== USER_CACHE_PREFIX + user) await caches.delete(key);
      }
    }
    if (indexedDB.databases) {
      for (const info of await indexedDB.databases()) {
        if (info.name && info.name.startsWith(DB_PREFIX) && info.name !== DB_NAME) {
          if (!(await hasPending(info.name))) indexedDB.deleteDatabase(info.name);
        }
      }
    }
  }

  async function forgetMine() {
    if (opened) (await opened).close();
    opened = null;
    await new Promise((resolve) => {
      const deleting = indexedDB.deleteDatabase(DB_NAME);
      deleting.onsuccess = deleting.onerror = deleting.onblocked = () => resolve();
    });
    if (window.caches) {
      for (const key of await caches.keys()) {
        if (key.startsWith(USER_CACHE_PREFIX) || key === "namma-meta") await caches.delete(key);
      }
    }
  }

  function signOutGuard() {
    document.querySelectorAll('form[action="/logout"]').forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        let pending = [];
        try {
          pending = (await all("queue")).filter((p) => p.state === "pending");
        } catch (e) { /* no database to read: nothing to warn about */ }
        if (pending.length && !window.confirm(words.signoutWarning)) return;
        try { await forgetMine(); } catch (e) { /* the next user's first page clears it */ }
        form.submit();
      });
    });
  }

  // --- the service worker -------------------------------------------------------------------------
  async function offlineReady() {
    if (!("serviceWorker" in navigator)) return;
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/agent" });
    const ready = await navigator.serviceWorker.ready;
    const worker = ready.active || registration.active;
    if (!worker) return;
    const assets = Array.from(document.querySelectorAll("script[src], link[rel=stylesheet], link[rel=icon]"))
      .map((node) => node.getAttribute("src") || node.getAttribute("href"))
      .filter((url) => url && url.startsWith("/static/"));
    // The page now (when the worker did not serve it, it has not kept it) and the sheet (if
    // the worker has none yet).
    const fresh = navigator.serviceWorker.controller ? [] : [window.location.pathname];
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve();
      worker.postMessage({ type: "keep", assets: assets.concat(["/agent.webmanifest"]), fresh: fresh, pages: ["/agent/sheet"] }, [channel.port2]);
      setTimeout(resolve, 15000);
    });
    document.body.dataset.offlineReady = "yes";
  }

  // --- start --------------------------------------------------------------------------------------
  function start() {
    document.querySelectorAll("form[data-collect]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        record(form);
      });
      // The UPI reference only when UPI is chosen (without script it is always there).
      const reference = form.querySelector(".reference");
      const methodShow = () => {
        const upi = form.querySelector("input[name=method][value=upi]");
        if (reference) reference.hidden = !(upi && upi.checked);
      };
      form.querySelectorAll("input[name=method]").forEach((r) => r.addEventListener("change", methodShow));
      methodShow();
    });
    const button = document.getElementById("sync-now");
    if (button) button.addEventListener("click", () => flush());
    window.addEventListener("online", () => flush());
    window.addEventListener("offline", () => note(words.offline));
    signOutGuard();
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
    forgetOthers().catch(() => {});
    sheetKeep()
      .then(show)
      .then(() => flush())
      .catch(() => {});
    offlineReady().catch(() => {});
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
