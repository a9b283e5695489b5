// The field agent's service worker (served at /sw.js, scope /agent). What it keeps:
// - the app shell: the static files (content-hashed URLs, so a kept one never goes stale) and
//   the manifest, in "namma-shell-v1";
// - the agent pages it is allowed to keep (PAGES: the dashboard and the collection sheet), per
//   user in "namma-user-<id>" (the id comes from the page's X-Namma-User header). When a page of
//   another user arrives, the previous user's pages are deleted first.
// What it never keeps: the API's JSON (or any other authenticated answer), other pages, errors,
// redirects. Pages are network first; without a connection the kept copy is served.
"use strict";

const SHELL = "namma-shell-v1";
const USER_PREFIX = "namma-user-";
const META = "namma-meta";
const USER_KEY = "/__namma/user";
const PAGES = ["/agent", "/agent/sheet"];

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("namma-shell-") && key !== SHELL) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

async function currentUser() {
  const hit = await (await caches.open(META)).match(USER_KEY);
  return hit ? hit.text() : null;
}

async function userSet(user) {
  const previous = await currentUser();
  if (previous === user) return;
  if (previous) await caches.delete(USER_PREFIX + previous);
  await (await caches.open(META)).put(USER_KEY, new Response(user));
}

async function pageKeep(path, response) {
  const user = response.headers.get("X-Namma-User");
  if (!PAGES.includes(path) || response.status !== 200 || response.redirected || !user) return;
  await userSet(user);
  await (await caches.open(USER_PREFIX + user)).put(path, response);
}

async function pageKept(path) {
  const user = await currentUser();
  if (!user) return null;
  const cache = await caches.open(USER_PREFIX + user);
  return (await cache.match(path)) || (await cache.match("/agent/sheet")) || null;
}

async function page(event, url) {
  try {
    const response = await fetch(event.request);
    if (!url.search) event.waitUntil(pageKeep(url.pathname, response.clone()));
    return response;
  } catch (error) {
    const kept = await pageKept(url.pathname);
    if (kept) return kept;
    return new Response("Offline: open the collection sheet once while connected.", {
      status: 503,
      headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" },
    });
  }
}

async function shell(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/") || url.pathname === "/agent.webmanifest") {
    event.respondWith(shell(request));
  } else if (request.mode === "navigate" && (url.pathname === "/agent" || url.pathname.startsWith("/agent/"))) {
    event.respondWith(page(event, url));
  }
  // Anything else (the API, other pages): the network, as if there were no worker.
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "keep") return;
  const reply = () => event.ports[0] && event.ports[0].postMessage({ done: true });
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    for (const asset of data.assets || []) {
      if (!(await cache.match(asset))) {
        try { await cache.add(asset); } catch (error) { /* kept next time */ }
      }
    }
    const user = await currentUser();
    const mine = user ? await caches.open(USER_PREFIX + user) : null;
    for (const path of new Set([...(data.fresh || []), ...(data.pages || [])])) {
      if (!PAGES.includes(path)) continue;
      if (!(data.fresh || []).includes(path) && mine && (await mine.match(path))) continue;
      try {
        const response = await fetch(path, { credentials: "same-origin" });
        await pageKeep(path, response);
      } catch (error) { /* offline: kept next time */ }
    }
  })().then(reply, reply));
});
