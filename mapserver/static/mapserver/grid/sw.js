/* The tablet's service worker, served as /grid/sw.js (scope /grid/) by mapserver/views/grid.py,
 * which puts its configuration in front of this file as self.MINQING_SW:
 *   {version, page, staticPrefix, precache: [urls], jsCatalog, basemapPrefix}
 *
 * What it keeps, so that the page opens and shows my grid without a network:
 *  - the page itself (network first: a fresh page when online, the last one offline);
 *  - our scripts and styles and Leaflet's (cache first, replaced when `version` changes: the
 *    version is a digest of those files, so a changed file means a new worker);
 *  - the JS translations (network first);
 *  - basemap tiles (cache first): the page stores my grid's tiles in "minqing-grid-tiles-v1".
 * Lookups ignore Vary: the server answers tiles with "Vary: Accept, Accept-Language, Cookie" and
 * static files with "Vary: Accept-Encoding", while the copies were stored under a bare URL (no
 * Accept header) and a map's <img> asks with one, so a plain match finds nothing offline.
 * The grid package and the queue of writes live in IndexedDB, kept by the page (grid.js); API
 * requests and every non-GET request pass through untouched.
 */
"use strict";

var CONFIG = self.MINQING_SW;
var SHELL = "minqing-grid-shell-" + CONFIG.version;
var TILES = "minqing-grid-tiles-v1";

function keep(cache, url) {
  return fetch(url, { credentials: "same-origin" }).then(function (response) {
    // A redirect (to the login page) or an error is not the page to show offline.
    if (response.ok && !response.redirected) { return cache.put(url, response); }
    return null;
  }).catch(function () { return null; });
}

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(SHELL).then(function (cache) {
      var urls = CONFIG.precache.concat([CONFIG.page, CONFIG.jsCatalog]);
      return Promise.all(urls.map(function (url) { return keep(cache, url); }));
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.indexOf("minqing-grid-shell-") === 0 && name !== SHELL;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function networkFirst(request, cacheName, key) {
  return fetch(request).then(function (response) {
    if (response.ok && !response.redirected) {
      var copy = response.clone();
      caches.open(cacheName).then(function (cache) { return cache.put(key || request, copy); });
    }
    return response;
  }, function (error) {
    return caches.open(cacheName).then(function (cache) {
      return cache.match(key || request, { ignoreSearch: !key, ignoreVary: true });
    }).then(function (hit) {
      if (hit) { return hit; }
      throw error;
    });
  });
}

function cacheFirst(request, cacheName) {
  return caches.open(cacheName).then(function (cache) {
    return cache.match(request, { ignoreVary: true }).then(function (hit) {
      if (hit) { return hit; }
      return fetch(request).then(function (response) {
        if (response.ok) { cache.put(request, response.clone()); }
        return response;
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    if (url.pathname === CONFIG.page) { event.respondWith(networkFirst(request, SHELL, CONFIG.page)); }
    return;
  }
  if (url.pathname.indexOf(CONFIG.staticPrefix) === 0) {
    event.respondWith(cacheFirst(request, SHELL));
  } else if (url.pathname.indexOf(CONFIG.basemapPrefix) === 0) {
    event.respondWith(cacheFirst(request, TILES));
  } else if (url.pathname === CONFIG.jsCatalog) {
    event.respondWith(networkFirst(request, SHELL, CONFIG.jsCatalog));
  }
});
