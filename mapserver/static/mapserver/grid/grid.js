/* The grid worker's tablet (/grid/): my grid on the map, my events and their actions, reports by
 * GPS or a tap, households and residents (masked), and work that goes on without a network.
 *
 * Offline design:
 *  - my grid's package is kept in IndexedDB (store "kv", per user) and read when the network is
 *    down; the service worker (/grid/sw.js) keeps the page, the scripts and my grid's basemap tiles;
 *  - every write (a report, an action, a photo) is first put in the IndexedDB queue (store
 *    "queue") with an id made here (client_id), then sent; the server stores a resend once (the
 *    report's external id, the action's idempotency key, the photo's client id), so a lost answer,
 *    a double tap or a second tab never makes two events;
 *  - the queue is sent in order when the network returns, on load and every 15 s while it holds
 *    something; a 401 stops it and says the login expired (nothing is dropped); a refused write
 *    (400/404/409/413) stays in the list with the server's message until the worker drops it.
 * Data to the script only through json_script ("grid-config"); no inline script (CSP).
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var el = M.el;
  var config = M.config("grid-config");
  var limits = config.limits;

  var state = {
    pkg: null,            // the grid package (from the server or the stored copy)
    fromCopy: false,      // the package shown is the stored copy
    events: [],
    queue: [],            // this user's queued writes, oldest first
    online: navigator.onLine,
    sessionExpired: false,
    syncing: false,
    csrf: M.csrfToken(),
    point: null,          // the report's place: {lon, lat, source, accuracy_m}
    tapping: false,
    picker: null,         // a function given the next tapped point instead of the report (pickPoint)
    tab: "events",
    openForm: null        // "<event id>:<action>" of the open note/resolve form
  };

  function $(id) { return document.getElementById(id); }
  function fmt(text, values) { return interpolate(text, values, true); }
  function label(group, code) {
    var labels = state.pkg && state.pkg.labels && state.pkg.labels[group];
    return (labels && labels[code]) || code;
  }

  /* ---------------------------------------------------------------- ids, storage (IndexedDB) */

  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  var dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var request = indexedDB.open("minqing-grid", 1);
        request.onupgradeneeded = function () {
          var database = request.result;
          if (!database.objectStoreNames.contains("queue")) { database.createObjectStore("queue", { keyPath: "client_id" }); }
          if (!database.objectStoreNames.contains("kv")) { database.createObjectStore("kv", { keyPath: "key" }); }
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
    }
    return dbPromise;
  }

  /* Run fn(store) in one transaction; resolves with the last request's result once committed. */
  function store(name, mode, fn) {
    return db().then(function (database) {
      return new Promise(function (resolve, reject) {
        var tx = database.transaction(name, mode);
        var request = fn(tx.objectStore(name));
        tx.oncomplete = function () { resolve(request ? request.result : undefined); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error); };
      });
    });
  }

  function queueLoad() {
    return store("queue", "readonly", function (s) { return s.getAll(); }).then(function (items) {
      state.queue = (items || []).filter(function (item) { return item.user === config.username; })
        .sort(function (a, b) { return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0; });
      renderQueue();
      return state.queue;
    });
  }
  function queuePut(item) { return store("queue", "readwrite", function (s) { return s.put(item); }).then(queueLoad); }
  function queueDelete(id) { return store("queue", "readwrite", function (s) { return s.delete(id); }).then(queueLoad); }
  function kvGet(key) { return store("kv", "readonly", function (s) { return s.get(key); }); }
  function kvPut(key, value) { return store("kv", "readwrite", function (s) { return s.put({ key: key, value: value }); }); }
  function kvDelete(key) { return store("kv", "readwrite", function (s) { return s.delete(key); }); }

  /* ---------------------------------------------------------------- status: network, session, toast */

  function setOnline(online) {
    state.online = online;
    var net = $("net-state");
    net.dataset.online = online ? "true" : "false";
    net.textContent = online ? gettext("Online") : gettext("Offline");
    $("offline-banner").classList.toggle("mq-hidden", online);
  }

  function sessionExpired() {
    state.sessionExpired = true;
    renderSession();
  }

  /* The expired-session banner, with what waits on this tablet (called again as the queue changes). */
  function renderSession() {
    if (!state.sessionExpired) { return; }
    var pending = state.queue.length;
    $("session-text").textContent = pending
      ? fmt(ngettext("Your login has expired. %(n)s item waiting to be sent is kept on this tablet; log in again to send it.",
                     "Your login has expired. %(n)s items waiting to be sent are kept on this tablet; log in again to send them.", pending), { n: pending })
      : gettext("Your login has expired. Log in again to go on.");
    $("session-banner").classList.remove("mq-hidden");
  }

  var toastTimer = null;
  function toast(text, kind) {
    var node = $("toast");
    node.textContent = text;
    node.dataset.kind = kind || "info";
    node.classList.remove("mq-hidden");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { node.classList.add("mq-hidden"); }, 6000);
  }

  function showError(text) {
    var node = $("grid-error");
    node.textContent = text || "";
    node.classList.toggle("mq-hidden", !text);
  }

  function isNetworkError(error) { return error instanceof M.HttpError && error.status === 0; }

  /* ---------------------------------------------------------------- the map */

  /* A phone (one column, tabs at the bottom, the map a tab of its own) or a tablet (map beside
   * the lists); the same breakpoint as grid.css. */
  var wide = window.matchMedia("(min-width: 760px)");
  function isPhone() { return !wide.matches; }

  var map = L.map("grid-map", { preferCanvas: true, zoomControl: true, attributionControl: true });
  // The attribution names the data as text: Leaflet's default prefix is a link out of the app.
  map.attributionControl.setPrefix(false);
  L.tileLayer(config.basemap.url, {
    minZoom: config.basemap.minzoom,
    maxNativeZoom: config.basemap.maxzoom,
    maxZoom: 19,
    attribution: config.basemap.attribution
  }).addTo(map);
  map.setView([36.06, 103.83], 13);

  var layers = {
    boundary: L.geoJSON(null, { style: { color: "#0b63b6", weight: 3, fillOpacity: 0.04 }, interactive: false }).addTo(map),
    buildings: L.geoJSON(null, { style: { color: "#566573", weight: 1, fillColor: "#aab4be", fillOpacity: 0.45 } }).addTo(map),
    addresses: L.geoJSON(null, {
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, { radius: 3, color: "#117864", weight: 1, fillOpacity: 0.8 });
      }
    }).addTo(map),
    units: L.geoJSON(null, {
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, { radius: 6, color: "#b9770e", weight: 2, fillColor: "#f5b041", fillOpacity: 0.9 });
      }
    }).addTo(map),
    events: L.layerGroup().addTo(map),
    report: L.layerGroup().addTo(map)
  };
  var overlays = {};
  overlays[gettext("Buildings")] = layers.buildings;
  overlays[gettext("Addresses")] = layers.addresses;
  overlays[gettext("Units")] = layers.units;
  overlays[gettext("Events")] = layers.events;
  L.control.layers(null, overlays, { collapsed: true }).addTo(map);

  function bindPopups() {
    layers.buildings.eachLayer(function (layer) {
      var p = layer.feature.properties;
      layer.bindPopup(function () {
        return el("div", null, el("b", null, p.name || p.code), el("br"),
          fmt(gettext("%(floors)s floors · %(households)s households · %(use)s"),
              { floors: p.floors || "—", households: p.households, use: label("building_use", p.use) }), el("br"),
          el("button", { type: "button", class: "grid-button grid-sheet-open", dataset: { building: p.code },
            onclick: function () { map.closePopup(); window.dispatchEvent(new CustomEvent("minqing:sheet", { detail: p.code })); } },
            gettext("Building sheet")));
      });
    });
    layers.addresses.eachLayer(function (layer) {
      layer.bindPopup(function () { return el("div", null, layer.feature.properties.text); });
    });
    layers.units.eachLayer(function (layer) {
      var p = layer.feature.properties;
      layer.bindPopup(function () {
        return el("div", null, el("b", null, p.name), el("br"), label("unit_kind", p.kind), el("br"), p.address || "");
      });
    });
  }

  /* Whether a point lies in a GeoJSON (Multi)Polygon: even-odd over every ring, so holes count. */
  function pointInGeometry(lon, lat, geometry) {
    if (!geometry) { return false; }
    var polygons = geometry.type === "MultiPolygon" ? geometry.coordinates : [geometry.coordinates];
    var inside = false;
    polygons.forEach(function (rings) {
      rings.forEach(function (ring) {
        for (var i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
          var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
          if ((yi > lat) !== (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi) { inside = !inside; }
        }
      });
    });
    return inside;
  }

  /* My grid fills the map. A phone's map is hidden behind the lists at first (no size to fit
   * in): then it is fitted when its tab first opens. */
  var fitted = false;
  function fitGrid() {
    if (!state.pkg) { return; }
    var size = map.getSize();
    if (!size.x || !size.y) { fitted = false; return; }
    var b = state.pkg.grid.bbox;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [30, 30], animate: false });
    fitted = true;
  }

  /* ---------------------------------------------------------------- the package */

  function packageKey() { return "package:" + config.username; }

  function loadPackage() {
    return M.fetchJSON(config.urls.package, { timeoutMs: 20000 }).then(function (pkg) {
      state.fromCopy = false;
      showPackage(pkg);
      kvPut(packageKey(), { saved_at: new Date().toISOString(), pkg: pkg }).catch(function () { return null; });
      // The offline copy of my grid's basemap is fetched once the page is ready and in use:
      // on a slow network it would otherwise compete with the page's own first requests.
      tilesPending = pkg.grid.bbox;
      if (document.body.dataset.ready === "true") { keepTilesSoon(); }
      return pkg;
    }, function (error) {
      if (error.status === 401) { sessionExpired(); }
      if (error.status === 403) {
        showError(error.message);
        $("events-list").replaceChildren(el("p", { class: "mq-empty" }, error.message));
        return null;
      }
      if (isNetworkError(error)) { setOnline(false); }
      return kvGet(packageKey()).then(function (copy) {
        if (copy && copy.value) {
          state.fromCopy = true;
          showPackage(copy.value.pkg);
          toast(fmt(gettext("Showing the copy of my grid saved at %(time)s."), { time: M.formatDateTime(copy.value.saved_at) }));
          return copy.value.pkg;
        }
        showError(gettext("My grid could not be loaded, and no copy is kept on this tablet yet."));
        return null;
      });
    });
  }

  function showPackage(pkg) {
    var firstTime = !state.pkg;
    state.pkg = pkg;
    $("grid-title").textContent = fmt(gettext("My grid: %(name)s"), { name: pkg.grid.name });
    layers.boundary.clearLayers().addData(pkg.grid.boundary);
    layers.buildings.clearLayers().addData(pkg.buildings);
    layers.addresses.clearLayers().addData(pkg.addresses);
    layers.units.clearLayers().addData(pkg.units);
    bindPopups();
    if (firstTime) {
      fitGrid();
      fillCategories(pkg.categories);
    }
    state.events = pkg.events;
    renderEvents();
    renderHouseholds();
    renderResidents();
    // The address checks, visits and building sheets (gridtasks.js) draw from the same package.
    window.dispatchEvent(new CustomEvent("minqing:package", { detail: pkg }));
  }

  function refreshEvents() {
    return M.fetchJSON(config.urls.events).then(function (body) {
      state.events = body.results;
      if (state.pkg) {
        state.pkg.events = body.results;
        kvPut(packageKey(), { saved_at: new Date().toISOString(), pkg: state.pkg }).catch(function () { return null; });
      }
      renderEvents();
    }, function (error) {
      if (isNetworkError(error)) { setOnline(false); }
      if (error.status === 401) { sessionExpired(); }
    });
  }

  /* ---------------------------------------------------------------- offline basemap tiles */

  function tileRange(bbox, z) {
    var n = Math.pow(2, z);
    function x(lon) { return Math.floor((lon + 180) / 360 * n); }
    function y(lat) {
      var r = lat * Math.PI / 180;
      return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n);
    }
    return { x0: x(bbox[0]), x1: x(bbox[2]), y0: y(bbox[3]), y1: y(bbox[1]) };
  }

  /* Keep my grid's basemap tiles (with a margin) in the cache the service worker reads offline. */
  var tilesPending = null;
  function keepTilesSoon() {
    var bbox = tilesPending;
    tilesPending = null;
    if (bbox) { setTimeout(function () { cacheTiles(bbox); }, 500); }
  }

  function cacheTiles(bbox) {
    if (!("caches" in window) || !state.online) { return; }
    var dx = (bbox[2] - bbox[0]) * 0.25, dy = (bbox[3] - bbox[1]) * 0.25;
    var box = [bbox[0] - dx, bbox[1] - dy, bbox[2] + dx, bbox[3] + dy];
    var urls = [];
    for (var z = config.offlineTileZooms[0]; z <= config.offlineTileZooms[1]; z += 1) {
      if (z < config.basemap.minzoom || z > config.basemap.maxzoom) { continue; }
      var r = tileRange(box, z);
      for (var tx = r.x0; tx <= r.x1; tx += 1) {
        for (var ty = r.y0; ty <= r.y1; ty += 1) {
          urls.push(config.basemap.url.replace("{z}", z).replace("{x}", tx).replace("{y}", ty));
        }
      }
    }
    caches.open("minqing-grid-tiles-v1").then(function (cache) {
      var done = 0;
      function next() {
        if (!urls.length || !state.online || state.leaving) {
          $("tiles-state").textContent = fmt(gettext("Offline map: %(n)s tiles kept"), { n: done });
          return null;
        }
        var url = urls.shift();
        return cache.match(url, { ignoreVary: true }).then(function (hit) {
          if (hit) { return null; }
          return fetch(url, { credentials: "same-origin" }).then(function (response) {
            if (response.ok) { return cache.put(url, response); }
            return null;
          });
        }).then(function () { done += 1; return next(); }, function () { return null; });
      }
      return next();
    }).catch(function () { return null; });
  }

  /* ---------------------------------------------------------------- lists */

  function fillCategories(categories) {
    var select = $("report-category");
    select.replaceChildren(el("option", { value: "" }, gettext("Choose a category")));
    var groups = {};
    categories.forEach(function (category) {
      var family = category.family;
      if (!groups[family]) {
        groups[family] = el("optgroup", { label: (categories.find(function (c) { return c.code === family; }) || category).name });
        select.appendChild(groups[family]);
      }
      groups[family].appendChild(el("option", { value: category.code }, category.name));
    });
  }

  function renderEvents() {
    var list = $("events-list");
    var events = state.events || [];
    $("events-count").textContent = events.length ? "(" + events.length + ")" : "";
    layers.events.clearLayers();
    if (!events.length) {
      list.replaceChildren(el("p", { class: "mq-empty" }, gettext("No open events in my grid.")));
      return;
    }
    var fragment = document.createDocumentFragment();
    events.forEach(function (event) {
      fragment.appendChild(eventCard(event));
      if (event.location) {
        L.circleMarker([event.location.lat, event.location.lon], { radius: 9, color: "#c0392b", weight: 2, fillColor: "#e74c3c", fillOpacity: 0.85 })
          .bindTooltip(el("span", null, event.category ? event.category.name : ""))
          .on("click", function () {
            // While a place is being chosen, a tap on a marker is a tap on the map (the click
            // goes on to the map, which sets the place); otherwise it opens the event's card.
            if (state.tapping || state.tab === "report") { return; }
            selectEvent(event.id, true);
          })
          .addTo(layers.events);
      }
    });
    list.replaceChildren(fragment);
  }

  function pendingFor(eventId) {
    return state.queue.filter(function (item) { return item.event_id === eventId; }).length;
  }

  function eventCard(event) {
    var card = el("article", { class: "grid-card", id: "event-" + event.id, dataset: { eventId: event.id, status: event.status } });
    var overdue = event.overdue ? el("span", { class: "grid-overdue" }, gettext("Overdue")) : null;
    card.appendChild(el("h3", null, event.category ? event.category.name : "—",
      el("span", { class: "grid-status" }, label("status", event.status)), overdue));
    if (event.description) { card.appendChild(el("p", null, event.description)); }
    card.appendChild(el("p", { class: "mq-muted" },
      fmt(gettext("Received %(received)s · deadline %(deadline)s"), { received: M.formatDateTime(event.received_at), deadline: M.formatDateTime(event.deadline) })));
    if (event.address_text) { card.appendChild(el("p", { class: "mq-muted" }, event.address_text)); }
    if (event.photos && event.photos.length) {
      var photos = el("div", { class: "grid-photos" });
      event.photos.forEach(function (photo) { photos.appendChild(el("img", { src: photo.url, alt: gettext("Photo"), loading: "lazy" })); });
      card.appendChild(photos);
    }
    var waiting = pendingFor(event.id);
    if (waiting) { card.appendChild(el("p", { class: "mq-stale" }, fmt(gettext("%(n)s change(s) waiting to be sent"), { n: waiting }))); }
    var actions = el("div", { class: "grid-actions" });
    (event.worker_actions || []).forEach(function (action) {
      if (action === "photo") {
        var input = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", capture: "environment", class: "grid-file", id: "photo-" + event.id });
        input.addEventListener("change", function () { addPhoto(event, input); });
        actions.appendChild(el("label", { class: "grid-button", for: "photo-" + event.id, "data-action": "photo" }, gettext("Photo"), input));
        return;
      }
      var names = { accept: gettext("Accept"), note: gettext("Note"), resolve: gettext("Resolve") };
      actions.appendChild(el("button", {
        type: "button", class: "grid-button", "data-action": action,
        onclick: function () {
          if (action === "accept") { enqueueAction(event, "accept", ""); }
          else { state.openForm = state.openForm === event.id + ":" + action ? null : event.id + ":" + action; renderEvents(); }
        }
      }, names[action]));
    });
    if (event.location) {
      actions.appendChild(el("button", { type: "button", class: "grid-button grid-phone-only", "data-action": "map",
        onclick: function () { selectEvent(event.id, "map"); } }, gettext("On the map")));
    }
    card.appendChild(actions);
    if (state.openForm && state.openForm.split(":")[0] === String(event.id)) {
      card.appendChild(noteForm(event, state.openForm.split(":")[1]));
    }
    card.addEventListener("click", function (e) {
      if (e.target.closest("button, label, input, textarea")) { return; }
      selectEvent(event.id, false);
    });
    return card;
  }

  function noteForm(event, action) {
    var area = el("textarea", { rows: 3, maxlength: 2000, class: "grid-note-text",
      placeholder: action === "resolve" ? gettext("What was done?") : gettext("What did you see or do?") });
    var message = el("p", { class: "grid-message" });
    var submit = el("button", { type: "button", class: "grid-button grid-button-primary", "data-action": action + "-submit" },
      action === "resolve" ? gettext("Resolve") : gettext("Save note"));
    submit.addEventListener("click", function () {
      if (!area.value.trim()) { message.textContent = gettext("Write a note first."); return; }
      submit.disabled = true;
      state.openForm = null;
      enqueueAction(event, action, area.value.trim());
    });
    var form = el("div", { class: "grid-note" }, area, message, submit);
    setTimeout(function () { area.focus(); }, 0);
    return form;
  }

  function selectEvent(id, scroll) {
    var event = (state.events || []).find(function (e) { return e.id === id; });
    document.querySelectorAll(".grid-card.grid-selected").forEach(function (node) { node.classList.remove("grid-selected"); });
    var card = $("event-" + id);
    if (card) {
      card.classList.add("grid-selected");
      if (scroll) { showTab("events"); card.scrollIntoView({ block: "nearest" }); }
    }
    if (event && event.location) {
      // A phone shows the map in place of the list when asked to (the card's "On the map").
      if (scroll === "map") { showTab("map"); }
      map.panTo([event.location.lat, event.location.lon]);
    }
  }

  function matches(filter, texts) {
    if (!filter) { return true; }
    return texts.some(function (text) { return text && String(text).toLowerCase().indexOf(filter) >= 0; });
  }

  function renderHouseholds() {
    var households = (state.pkg && state.pkg.households) || [];
    var filter = $("households-filter").value.trim().toLowerCase();
    $("households-count").textContent = "(" + households.length + ")";
    var fragment = document.createDocumentFragment();
    var shown = 0;
    households.forEach(function (h) {
      if (!matches(filter, [h.code, h.address, h.building])) { return; }
      shown += 1;
      fragment.appendChild(el("div", { class: "grid-household", dataset: { code: h.code } },
        el("b", null, h.address || h.code),
        h.care ? el("span", { class: "grid-tag" }, fmt(gettext("%(n)s in care"), { n: h.care })) : null,
        el("div", { class: "mq-muted" }, fmt(gettext("%(code)s · %(use)s · %(occupancy)s · %(residents)s residents"),
          { code: h.code, use: label("household_use", h.use), occupancy: label("occupancy", h.occupancy), residents: h.residents }))));
    });
    if (!shown) { fragment.appendChild(el("p", { class: "mq-empty" }, gettext("No households."))); }
    $("households-list").replaceChildren(fragment);
  }

  function renderResidents() {
    var residents = (state.pkg && state.pkg.residents) || [];
    var filter = $("residents-filter").value.trim().toLowerCase();
    $("residents-count").textContent = "(" + residents.length + ")";
    var fragment = document.createDocumentFragment();
    var shown = 0;
    residents.forEach(function (r) {
      var tags = (r.care_tags || []).map(function (tag) { return label("care_tags", tag); });
      if (!matches(filter, [r.name, r.household].concat(tags))) { return; }
      shown += 1;
      var row = el("div", { class: "grid-person", dataset: { care: tags.length ? "true" : "false" } },
        el("b", null, r.name),
        tags.map(function (tag) { return el("span", { class: "grid-tag" }, tag); }).reduce(function (span, node) { span.appendChild(node); return span; }, el("span")),
        el("div", { class: "mq-muted" }, fmt(gettext("%(gender)s · %(age)s years · %(residence)s · household %(household)s"),
          { gender: label("gender", r.gender), age: r.age, residence: label("residence", r.residence), household: r.household || "—" })),
        el("div", { class: "grid-masked" }, r.id_number, "  ", r.phone || ""));
      fragment.appendChild(row);
    });
    if (!shown) { fragment.appendChild(el("p", { class: "mq-empty" }, gettext("No residents."))); }
    $("residents-list").replaceChildren(fragment);
  }

  $("households-filter").addEventListener("input", renderHouseholds);
  $("residents-filter").addEventListener("input", renderResidents);

  /* ---------------------------------------------------------------- tabs */

  /* Tabs: "map" (phones only: on a tablet the map is always beside the lists), "events",
   * "report", "households", "residents". keepTapping: the map tab opened to choose a place. */
  function showTab(name, keepTapping) {
    if (name === "map" && !isPhone()) { name = "events"; }
    var wasMap = document.body.dataset.tab === "map";
    state.tab = name;
    document.body.dataset.tab = name;
    document.querySelectorAll(".grid-tab").forEach(function (tab) {
      var selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
    });
    ["events", "report", "households", "residents", "tasks", "visits"].forEach(function (panel) {
      $("panel-" + panel).classList.toggle("mq-hidden", panel !== name);
    });
    if (!keepTapping) { setTapping(name === "report" && state.tapping && !state.picker); }
    if (name === "map" && !wasMap) {
      map.invalidateSize();
      if (!fitted) { fitGrid(); }
    }
  }
  var tabs = Array.prototype.slice.call(document.querySelectorAll(".grid-tab"));
  tabs.forEach(function (tab) {
    tab.addEventListener("click", function () { showTab(tab.dataset.tab); });
    // Arrow keys move between the tabs (the tab list pattern of WAI-ARIA).
    tab.addEventListener("keydown", function (e) {
      if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") { return; }
      var shown = tabs.filter(function (t) { return t.offsetParent !== null; });
      var next = shown[(shown.indexOf(tab) + (e.key === "ArrowRight" ? 1 : shown.length - 1)) % shown.length];
      showTab(next.dataset.tab);
      next.focus();
      e.preventDefault();
    });
  });
  // From a phone to a tablet's width (a turned tablet, a resized window): the map tab goes away.
  wide.addEventListener("change", function () {
    if (!isPhone() && state.tab === "map") { showTab("events"); }
    map.invalidateSize();
  });

  /* The menu of the phone's top bar: language and account. */
  var menu = $("grid-menu");
  $("menu-toggle").addEventListener("click", function () {
    var open = !menu.classList.contains("grid-menu-open");
    menu.classList.toggle("grid-menu-open", open);
    $("menu-toggle").setAttribute("aria-expanded", open ? "true" : "false");
  });

  /* Full screen: the map over the whole window (a phone held up in the street). */
  $("map-full").addEventListener("click", function () {
    var full = !document.body.classList.contains("grid-map-fullscreen");
    document.body.classList.toggle("grid-map-fullscreen", full);
    $("map-full").setAttribute("aria-pressed", full ? "true" : "false");
    $("map-full").textContent = full ? gettext("Exit full screen") : gettext("Full screen");
    map.invalidateSize();
  });

  /* ---------------------------------------------------------------- reporting */

  var REPORT_HINT = $("map-hint").textContent;
  function setTapping(on) {
    state.tapping = on;
    if (!on) { state.picker = null; $("map-hint").textContent = REPORT_HINT; }
    document.querySelector(".grid-map-pane").classList.toggle("grid-tapping", on);
    $("map-hint").classList.toggle("mq-hidden", !on);
  }

  /* The next tap on the map goes to ``pick({lon, lat})`` (the address checks' moves and new
   * addresses) with ``hint`` over the map; a phone shows the map for the tap and goes back to
   * the tab it came from. */
  function pickPoint(pick, hint) {
    var back = state.tab;
    setTapping(true);
    $("map-hint").textContent = hint;
    state.picker = function (point) {
      if (isPhone() && state.tab === "map") { showTab(back); }
      pick(point);
    };
    if (isPhone()) { showTab("map", true); }
  }

  function setPoint(point) {
    state.point = point;
    layers.report.clearLayers();
    var where = $("report-where");
    $("report-message").textContent = "";
    if (!point) {
      where.dataset.inside = "";
      where.textContent = gettext("No place chosen yet.");
      return;
    }
    L.circleMarker([point.lat, point.lon], { radius: 11, color: "#6c3483", weight: 3, fillColor: "#bb8fce", fillOpacity: 0.7, interactive: false })
      .addTo(layers.report);
    // Answered at once from the boundary kept on the tablet (works offline) …
    var inside = state.pkg ? pointInGeometry(point.lon, point.lat, state.pkg.grid.boundary) : false;
    where.dataset.inside = inside ? "true" : "false";
    where.textContent = inside ? gettext("Inside my grid.") : gettext("Outside my grid: the report goes to the grid that holds the place.");
    // … then confirmed by the server, which also names the grid that holds the point.
    if (!state.online) { return; }
    var query = "?lon=" + point.lon.toFixed(7) + "&lat=" + point.lat.toFixed(7);
    M.fetchJSON(config.urls.locate + query).then(function (answer) {
      if (state.point !== point) { return; }
      where.dataset.inside = answer.inside ? "true" : "false";
      where.textContent = answer.message;
    }, function (error) {
      if (isNetworkError(error)) { setOnline(false); }
    });
  }

  map.on("click", function (e) {
    if (state.picker) {
      var pick = state.picker;
      map.closePopup();
      setTapping(false);
      pick({ lon: e.latlng.lng, lat: e.latlng.lat });
      return;
    }
    if (state.tab !== "report" && !state.tapping) { return; }
    map.closePopup();  // a tap on a building while reporting chooses the place, not the building
    setTapping(false);
    setPoint({ lon: e.latlng.lng, lat: e.latlng.lat, source: "tap" });
    // A phone showed the map to choose the place: back to the form, with the place set.
    if (state.tab === "map") { showTab("report"); }
  });

  /* Choosing the place on the map: on a phone the map tab opens for the tap. */
  function chooseOnMap() {
    setTapping(true);
    if (isPhone()) { showTab("map", true); }
  }

  $("report-tap").addEventListener("click", function () {
    $("report-message").textContent = "";
    chooseOnMap();
  });

  $("report-gps").addEventListener("click", function () {
    var message = $("report-message");
    if (!navigator.geolocation) {
      message.textContent = gettext("This device has no GPS. Tap the map where the problem is.");
      chooseOnMap();
      return;
    }
    message.textContent = gettext("Finding your position…");
    navigator.geolocation.getCurrentPosition(function (position) {
      var accuracy = position.coords.accuracy;
      if (!(accuracy <= limits.gpsMaxAccuracyM)) {
        setPoint(null);
        message.textContent = fmt(gettext("The GPS fix is only accurate to %(accuracy)s m (at most %(limit)s m is accepted). Tap the map where the problem is."),
          { accuracy: M.formatNumber(accuracy), limit: M.formatNumber(limits.gpsMaxAccuracyM) });
        setTapping(true);  // the message stays in view; the hint waits on the map tab
        return;
      }
      setPoint({ lon: position.coords.longitude, lat: position.coords.latitude, source: "gps", accuracy_m: Math.round(accuracy * 10) / 10 });
      map.panTo([position.coords.latitude, position.coords.longitude]);
    }, function (error) {
      message.textContent = fmt(gettext("No GPS position (%(reason)s). Tap the map where the problem is."), { reason: error.message || error.code });
      setTapping(true);
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 0 });
  });

  var submitting = false;
  $("report-form").addEventListener("submit", function (e) {
    e.preventDefault();
    // A second tap while the first is being queued is ignored; the queued report also carries
    // its client_id, so even a resend of the same report is stored once by the server.
    if (submitting) { return; }
    var button = $("report-submit");
    var message = $("report-message");
    var category = $("report-category").value;
    var description = $("report-description").value.trim();
    if (!category) { message.textContent = gettext("Choose a category."); return; }
    if (!description) { message.textContent = gettext("Describe the problem."); return; }
    if (!state.point) { message.textContent = gettext("Choose the place: use GPS or tap the map."); return; }
    submitting = true;
    button.disabled = true;
    var id = uuid();
    var location = { lon: state.point.lon, lat: state.point.lat, source: state.point.source };
    if (state.point.accuracy_m !== undefined) { location.accuracy_m = state.point.accuracy_m; }
    var categoryName = $("report-category").selectedOptions[0].textContent;
    var item = {
      client_id: id, user: config.username, kind: "report", created_at: new Date().toISOString(),
      url: config.urls.events, state: "pending", label: categoryName + "：" + description.slice(0, 40),
      body: { client_id: id, category: category, description: description, location: location, reported_at: new Date().toISOString() }
    };
    queuePut(item).then(function () {
      $("report-form").reset();
      setPoint(null);
      message.textContent = "";
      toast(state.online ? gettext("Report queued; sending…") : gettext("Report kept on this tablet; it is sent when the network returns."));
      return sync();
    }).catch(function (error) {
      message.textContent = fmt(gettext("The report could not be kept: %(error)s"), { error: String(error) });
    }).then(function () {
      submitting = false;
      button.disabled = false;
    });
  });

  /* ---------------------------------------------------------------- actions and photos */

  function enqueueAction(event, action, note) {
    var id = uuid();
    var names = { accept: gettext("Accept"), note: gettext("Note"), resolve: gettext("Resolve") };
    return queuePut({
      client_id: id, user: config.username, kind: "action", created_at: new Date().toISOString(), event_id: event.id,
      url: config.urls.actions.replace("{id}", event.id), state: "pending",
      label: names[action] + " · " + (event.category ? event.category.name : "#" + event.id) + (note ? "：" + note.slice(0, 30) : ""),
      body: { client_id: id, action: action, note: note }
    }).then(function () {
      renderEvents();
      return sync();
    });
  }

  function addPhoto(event, input) {
    var file = input.files && input.files[0];
    input.value = "";
    if (!file) { return; }
    if (["image/jpeg", "image/png", "image/webp"].indexOf(file.type) < 0) {
      toast(fmt(gettext("Only JPEG, PNG or WebP photos can be sent (this file is %(type)s)."), { type: file.type || "?" }), "error");
      return;
    }
    if (file.size > limits.photoMaxBytes) {
      toast(fmt(gettext("The photo is %(size)s MB; at most %(limit)s MB can be sent. Take it again at a lower resolution."),
        { size: M.formatNumber(file.size / 1048576, 1), limit: M.formatNumber(limits.photoMaxBytes / 1048576) }), "error");
      return;
    }
    var id = uuid();
    queuePut({
      client_id: id, user: config.username, kind: "photo", created_at: new Date().toISOString(), event_id: event.id,
      url: config.urls.photos.replace("{id}", event.id) + "?client_id=" + id, state: "pending",
      label: gettext("Photo") + " · " + (event.category ? event.category.name : "#" + event.id),
      blob: file, content_type: file.type
    }).then(function () {
      renderEvents();
      return sync();
    });
  }

  /* ---------------------------------------------------------------- the queue */

  function renderQueue() {
    renderSession();
    var pending = state.queue.filter(function (item) { return item.state === "pending"; }).length;
    var button = $("pending");
    button.dataset.count = String(pending);
    button.textContent = pending ? fmt(ngettext("%(n)s to send", "%(n)s to send", pending), { n: pending }) : gettext("Nothing to send");
    var list = $("queue-list");
    var fragment = document.createDocumentFragment();
    state.queue.forEach(function (item) {
      var failed = item.state === "failed";
      var node = el("div", { class: "grid-queue-item", dataset: { state: item.state, clientId: item.client_id } },
        el("b", null, failed ? gettext("Not accepted") : gettext("Waiting to be sent")), " ", item.label,
        failed ? el("p", { class: "mq-error" }, item.error) : null);
      if (failed) {
        node.appendChild(el("div", { class: "grid-actions" },
          el("button", { type: "button", class: "grid-button", onclick: function () { item.state = "pending"; item.error = ""; queuePut(item).then(sync); } }, gettext("Try again")),
          el("button", { type: "button", class: "grid-button grid-button-danger", onclick: function () { queueDelete(item.client_id); } }, gettext("Discard"))));
      }
      fragment.appendChild(node);
    });
    list.replaceChildren(fragment);
    window.dispatchEvent(new CustomEvent("minqing:queue"));
  }

  $("pending").addEventListener("click", function () {
    showTab("events");
    state.sessionExpired = false;
    sync();
  });

  function freshCsrf() {
    return M.fetchJSON(config.urls.session).then(function (session) { state.csrf = session.csrf_token; });
  }

  /* Send one queued write; resolves with "sent", "failed", "offline", "expired" or "later". */
  function send(item, retried) {
    var headers = { Accept: "application/json", "X-CSRFToken": state.csrf };
    var body;
    if (item.kind === "photo") {
      headers["Content-Type"] = item.content_type;
      body = item.blob;
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(item.body);
    }
    return fetch(item.url, { method: "POST", headers: headers, body: body, credentials: "same-origin" }).then(function (response) {
      return response.text().then(function (text) {
        var answer = null;
        try { answer = text ? JSON.parse(text) : null; } catch { answer = null; }
        var message = answer && answer.error ? answer.error.message : response.statusText;
        if (response.ok) { return { outcome: "sent", answer: answer }; }
        if (response.status === 401) { return { outcome: "expired" }; }
        if (response.status === 403 && !retried && /CSRF/i.test(message || "")) {
          // The session was renewed elsewhere (a new login): take its token and try once more.
          return freshCsrf().then(function () { return send(item, true); }, function (error) {
            return { outcome: error.status === 401 ? "expired" : "later" };
          });
        }
        if (response.status >= 500 || response.status === 429) { return { outcome: "later" }; }
        return { outcome: "failed", message: message || String(response.status),
                 parameter: answer && answer.error ? answer.error.parameter || "" : "" };
      });
    }, function () {
      return { outcome: "offline" };
    });
  }

  function sync() {
    if (state.syncing || state.sessionExpired) { return Promise.resolve(); }
    state.syncing = true;
    var sentAny = false;
    function step() {
      var item = state.queue.find(function (candidate) { return candidate.state === "pending"; });
      if (!item) { return null; }
      return send(item).then(function (result) {
        if (result.outcome === "sent") {
          sentAny = true;
          setOnline(true);
          if (item.kind === "report" && result.answer && result.answer.where) {
            toast(fmt(gettext("Report sent. %(where)s"), { where: result.answer.where.message }));
          }
          // The address checks follow their answers (gridtasks.js).
          window.dispatchEvent(new CustomEvent("minqing:sent", { detail: { item: item, answer: result.answer } }));
          return queueDelete(item.client_id).then(step);
        }
        if (result.outcome === "failed") {
          item.state = "failed";
          item.error = result.message;
          item.parameter = result.parameter;
          toast(fmt(gettext("Not accepted: %(message)s"), { message: result.message }), "error");
          return queuePut(item).then(step);
        }
        if (result.outcome === "expired") { sessionExpired(); }
        if (result.outcome === "offline") { setOnline(false); }
        return null;
      });
    }
    return queueLoad().then(step).then(function () {
      state.syncing = false;
      if (sentAny) { return refreshEvents(); }
      return null;
    }, function () {
      state.syncing = false;
    });
  }

  window.addEventListener("online", function () {
    setOnline(true);
    sync().then(function () { if (state.fromCopy || !state.pkg) { return loadPackage(); } return refreshEvents(); });
  });
  window.addEventListener("offline", function () { setOnline(false); });
  window.addEventListener("minqing:session-expired", sessionExpired);
  $("session-login").setAttribute("href", config.urls.login);

  // While something waits, try again now and then (the "online" event is not fired on every
  // kind of recovery, e.g. a server that was down); refresh my events every minute.
  var ticks = 0;
  setInterval(function () {
    ticks += 1;
    if (state.queue.some(function (item) { return item.state === "pending"; })) { sync(); }
    else if (ticks % 4 === 0 && state.online && !state.sessionExpired && state.pkg) { refreshEvents(); }
  }, 15000);

  /* Logging out removes my grid's copy (residents' data) from the tablet; the queue stays, so
   * that nothing waiting is lost (it is sent after the same user logs in again). */
  var logout = document.querySelector(".mq-account");
  if (logout) {
    logout.addEventListener("submit", function (e) {
      e.preventDefault();
      state.leaving = true;  // no more tiles fetched for a session about to end
      kvDelete(packageKey()).catch(function () { return null; }).then(function () { logout.submit(); });
    });
  }

  /* ---------------------------------------------------------------- start */

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(config.urls.serviceWorker, { scope: config.urls.page }).catch(function (error) {
      console.warn("service worker not registered:", error);
    });
  }

  setOnline(navigator.onLine);
  showTab("events");
  // Exposed for the browser tests and for debugging on a device.
  window.MinqingGrid = {
    map: map, state: state, sync: sync, queuePut: queuePut, queueDelete: queueDelete, uuid: uuid, toast: toast, label: label,
    showTab: showTab, urls: config.urls, username: config.username, limits: limits, addressFields: config.addressFields,
    pickPoint: pickPoint, isPhone: isPhone, savePackage: function () {
      return kvPut(packageKey(), { saved_at: new Date().toISOString(), pkg: state.pkg }).catch(function () { return null; });
    },
    inGrid: function (lon, lat) { return state.pkg ? pointInGeometry(lon, lat, state.pkg.grid.boundary) : false; }
  };
  queueLoad().then(loadPackage).then(sync).then(function () {
    document.body.dataset.ready = "true";
    keepTilesSoon();
  }, function (error) {
    document.body.dataset.ready = "true";
    showError(String(error));
  });
})();
