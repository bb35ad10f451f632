/* The command-center wall (/wall/). Runs unattended for hours, so:
 * - nothing grows without bound: the feed and its markers are capped at config.feedSize, every
 *   other list is replaced whole, map overlays are cleared and refilled, one chart is reused;
 * - every repeating task is a Minqing.Poller (never overlapping, backing off on errors) or the
 *   one clock interval, all stopped on pagehide;
 * - a failed poll never blanks the screen: the last figures stay, the status turns "stale".
 * Everything shown comes from the JSON API; configuration from json_script "wall-config".
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var L = window.L;
  var cfg = M.config("wall-config");
  var el = M.el;
  var ZONE = "Asia/Shanghai";
  var FEED_INTERVAL_MS = 2000;
  var KPI_INTERVAL_MS = 30000;
  var LISTS_INTERVAL_MS = 60000;
  var HOTSPOT_INTERVAL_MS = 300000;
  var TIMELAPSE_STEP_MS = 1500;
  var NEW_EVENT_MS = 60000;
  var FEED_RETRY_MAX_MS = 4000;
  var STATUS_INTERVAL_MS = 10000;
  var CASES_ROTATE_MS = 8000;

  var STATUS = {
    received: gettext("Received"),
    triaged: gettext("Triaged"),
    assigned: gettext("Assigned"),
    in_progress: gettext("In progress"),
    resolved: gettext("Resolved"),
    verified: gettext("Verified"),
    closed: gettext("Closed"),
    returned: gettext("Returned"),
    suspended: gettext("Suspended"),
    reopened: gettext("Reopened")
  };
  /* Marker colours by category family; the list's colours are in wall.css (.family-…). */
  var FAMILY_COLOURS = { dispute: "#ffb74d", hazard: "#ff6e6e", other: "#8ecbff" };
  var AREA_KIND = {
    grid_small: gettext("Small grid"),
    grid_medium: gettext("Medium grid"),
    grid_large: gettext("Large grid"),
    community: gettext("Community"),
    street: gettext("Street"),
    district: gettext("District"),
    city: gettext("City")
  };

  var state = {
    window: "today",
    custom: null, // {from: "YYYY-MM-DD", to: "YYYY-MM-DD"} (both days included)
    family: "dispute",
    generation: 0, // bumped by every change of window or family; answers for an older one are dropped
    newest: null, // received_at of the newest event in the feed (ISO), the next poll's since
    summaryCode: null,
    timelapse: null
  };
  var pollers = [];
  var intervals = [];

  // --- dates ------------------------------------------------------------------------------------

  var dayFormat = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" });

  function today() { return dayFormat.format(new Date()); }

  /* "2026-01-05" + n days, as a date string (calendar arithmetic in UTC: no zone shifts). */
  function addDays(day, n) {
    var date = new Date(day + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + n);
    return date.toISOString().slice(0, 10);
  }

  /* The current window as the API takes it: since (a date: 00:00 server time) and until (a
   * date, exclusive) or null for "until now". */
  function currentWindow() {
    var day = today();
    if (state.window === "7d") { return { since: addDays(day, -6), until: null }; }
    if (state.window === "30d") { return { since: addDays(day, -29), until: null }; }
    if (state.window === "custom" && state.custom) { return { since: state.custom.from, until: addDays(state.custom.to, 1) }; }
    return { since: day, until: null };
  }

  function windowLabel() {
    if (state.window === "7d") { return gettext("last 7 days"); }
    if (state.window === "30d") { return gettext("last 30 days"); }
    if (state.window === "custom" && state.custom) { return state.custom.from + " – " + state.custom.to; }
    return gettext("today");
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (key) {
      if (params[key] !== null && params[key] !== undefined && params[key] !== "") {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(params[key]));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function windowQuery(extra) {
    var w = currentWindow();
    return query(Object.assign({ since: w.since, until: w.until }, extra || {}));
  }

  // --- status line --------------------------------------------------------------------------------

  var statusNode = document.getElementById("live-status");
  var expired = false;

  function showStatus(kind, text) {
    statusNode.dataset.state = kind;
    statusNode.replaceChildren(text);
  }

  function onFeedState(result) {
    if (expired) { return; }
    if (result.ok) {
      showStatus("live", gettext("Live"));
    } else if (result.error && result.error.status === 403) {
      showStatus("expired", gettext("No permission for live data"));
    } else {
      var last = result.lastSuccess ? M.formatDateTime(result.lastSuccess, { month: undefined, day: undefined, second: "2-digit" }) : "—";
      showStatus("stale", interpolate(gettext("Data may be stale · last update %(time)s"), { time: last }, true));
    }
  }

  window.addEventListener("minqing:session-expired", function () {
    expired = true;
    statusNode.dataset.state = "expired";
    statusNode.replaceChildren(
      gettext("Session expired") + " · ",
      el("a", { href: "/accounts/login/?next=" + encodeURIComponent(location.pathname) }, gettext("Log in again"))
    );
  });

  // --- clock --------------------------------------------------------------------------------------

  var clock = document.getElementById("clock");
  var clockFormat = new Intl.DateTimeFormat(M.locale, { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function tick() {
    clock.textContent = clockFormat.format(new Date());
    // Past midnight yesterday's times need their date: the feed's times follow the clock.
    var day = today();
    if (day !== tick.day) {
      tick.day = day;
      Array.prototype.forEach.call(document.querySelectorAll("#feed time.when"), function (node) {
        node.textContent = receivedText(node.getAttribute("datetime"));
      });
    }
  }
  tick();
  intervals.push(setInterval(tick, 1000));

  // --- map ----------------------------------------------------------------------------------------

  var scale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16;
  var map = L.map("wall-map", {
    // Without bounds (no grids yet): the configured centre; a 4K wall one zoom level closer, so
    // lines stay readable (fitBounds does the same by itself).
    center: cfg.center,
    zoom: cfg.zoom + (window.innerWidth >= 3000 ? 1 : 0),
    // Whole zoom levels only: Leaflet 1.9's GridLayer.redraw (what setUrl calls when the window
    // changes) forgets to round a fractional zoom and would ask for tiles of zoom 12.5.
    zoomSnap: 1,
    preferCanvas: true
  });
  // The governed city fills the map (config.bounds: the extent of the reader's small grids).
  if (cfg.bounds) {
    map.fitBounds([[cfg.bounds[1], cfg.bounds[0]], [cfg.bounds[3], cfg.bounds[2]]], { padding: [10 * scale, 10 * scale] });
  }
  map.attributionControl.setPrefix("Leaflet");
  map.createPane("heat").style.zIndex = 250;
  map.createPane("outlines").style.zIndex = 300;
  map.createPane("hotspots").style.zIndex = 420;
  map.createPane("events").style.zIndex = 450;

  // Tiles of 512 px cut from the zoom level above (zoomOffset -1): a quarter of the requests,
  // which matters on a 4K wall (about 300 tile requests at 256 px). A heat surface is smooth and
  // vector outlines are drawn at full resolution, so neither looks coarser.
  var BIG_TILES = { tileSize: 512, zoomOffset: -1 };
  /* The heat map is double-buffered: the picture on the wall stays until every tile of the next
   * one (another window, the time-lapse's next day) has arrived behind it, then the two swap.
   * One layer's setUrl drops its tiles first, and the wall showed no heat while they came. */
  var HEAT_OPACITY = 0.8;
  function heatLayer(url, opacity) {
    return L.tileLayer(url, Object.assign({ pane: "heat", opacity: opacity, maxZoom: 19, attribution: gettext("Minqing Map") }, BIG_TILES));
  }
  var heat = heatLayer(heatUrl(currentWindow()), HEAT_OPACITY);  // the one shown
  var heatNext = null;       // the one loading behind it (on the map only while it loads)
  var heatWanted = heat._url;

  /* Show the heat map of ``url`` once it has loaded; ``shown()`` is called when it is on screen. */
  function showHeat(url, shown) {
    heatWanted = url;
    if (heatNext) { heatNext.off("load"); }
    if (heat._url === url) {
      if (heatNext) { map.removeLayer(heatNext); }
      if (shown) { shown(); }
      return;
    }
    heatNext = heatNext || heatLayer(url, 0);
    var next = heatNext;
    next.once("load", function () {
      if (next._url !== heatWanted) { return; }
      next.setOpacity(HEAT_OPACITY);
      map.removeLayer(heat);
      heatNext = heat;
      heatNext.setOpacity(0);
      heat = next;
      if (shown) { shown(); }
    });
    if (map.hasLayer(next)) { next.setUrl(url); } else { next.setUrl(url, true); next.addTo(map); }
  }
  function heatLoading() { return heatWanted !== heat._url; }

  function heatUrl(w) {
    return cfg.urls.heatTile + query({ family: state.family, since: w.since, until: w.until });
  }

  // Leaflet.VectorGrid 1.3.0 builds a tile's URL from the display zoom and ignores zoomOffset
  // (TileLayer's _getZoomForUrl is not in GridLayer): a 512-px tile at zoom z covers the 256-px
  // tile of zoom z - 1, so ask for that one. Pinned version, private method: see package.json.
  var OffsetProtobuf = L.VectorGrid.Protobuf.extend({
    _getVectorTilePromise: function (coords, tileBounds) {
      var asked = L.point(coords.x, coords.y);
      asked.z = coords.z + (this.options.zoomOffset || 0);
      return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, asked, tileBounds);
    }
  });

  function outlines(layerId, style, options) {
    var styles = {};
    styles[layerId] = style;
    return new OffsetProtobuf(cfg.urls.vectorTile.replace("{layer}", layerId), Object.assign({
      pane: "outlines",
      rendererFactory: L.canvas.tile,
      vectorTileLayerStyles: styles,
      // Clicks are answered by the map (below), not by the tiles: overlay panes above the
      // tiles take the pointer events, and a located point names grid and street at once.
      interactive: false,
      maxNativeZoom: 18,
      getFeatureId: function (feature) { return feature.properties.code; }
    }, BIG_TILES, options || {}));
  }

  var line = function (color, weight, extra) {
    return Object.assign({ color: color, weight: weight * scale, opacity: 0.9, fill: true, fillOpacity: 0, fillColor: color }, extra || {});
  };
  // Small grids are drawn (and clicked) from this zoom on, streets below it. With zoomOffset -1
  // this asks for z13 tiles, the small grids' first zoom in the catalog.
  var GRID_ZOOM = 14;
  // Buildings are drawn, and a click on one opens its sheet (楼盘表), from this zoom on.
  var BUILDING_ZOOM = 17;
  var baseLayers = [
    heat,
    outlines("regions_district", line("#7fb3ff", 2.5), { zIndex: 1 }),
    outlines("regions_street", line("#4f86c6", 1.2), { zIndex: 2, minZoom: 10 }),
    outlines("grids_small", line("#2e6f9e", 0.7), { zIndex: 3, minZoom: GRID_ZOOM }),
    // Buildings from BUILDING_ZOOM (512-px tiles of zoom 16, the catalog's buildings start at 15).
    outlines("buildings", line("#c7d3df", 0.6, { fillOpacity: 0.18 }), { zIndex: 4, minZoom: BUILDING_ZOOM })
  ];

  /* A click on the map: locate the point (grids and regions) and open the summary of its small
   * grid when zoomed in to the grids, of its street otherwise. */
  map.on("click", function (e) {
    var where = query({ lon: e.latlng.lng.toFixed(7), lat: e.latlng.lat.toFixed(7) });
    var zoomedIn = map.getZoom() >= GRID_ZOOM;
    function summary() {
      M.fetchJSON(cfg.urls.locate + where).then(function (located) {
        var area = zoomedIn ? located.grid_small || located.street : located.street || located.grid_small;
        if (area) { openSummary(area.code); }
      }, function () { /* a point outside China or a lost network: nothing to show */ });
    }
    if (map.getZoom() < BUILDING_ZOOM) { summary(); return; }
    // Among the buildings: the building's sheet, else (between buildings) the grid's summary.
    M.fetchJSON(cfg.urls.sheetAt + where).then(openSheet, summary);
  });

  /* The building sheet beside the map, not over the page: the wall's lists, feed and rotation go
   * on, and a sheet nobody closes closes itself after SHEET_MS (the wall is left unattended). */
  var SHEET_MS = 90000;
  var sheetDialog = document.getElementById("wall-sheet");
  var sheetTimer = null;
  function closeSheet() {
    clearTimeout(sheetTimer);
    if (sheetDialog.open) { sheetDialog.close(); }
  }
  function openSheet(sheet) {
    window.MinqingSheet.open(sheetDialog, sheet, cfg.sheetLabels, { modal: false });
    clearTimeout(sheetTimer);
    sheetTimer = setTimeout(closeSheet, SHEET_MS);
    document.getElementById("wall-sheet-close").focus();
  }
  document.getElementById("wall-sheet-close").addEventListener("click", closeSheet);
  sheetDialog.addEventListener("keydown", function (e) { if (e.key === "Escape") { closeSheet(); } });

  // Hot spots and early warnings: small grids as GeoJSON, refilled in place on every refresh.
  var gridGeometry = {}; // code → GeoJSON geometry, from the latest hot-spot answer only
  var hotLayer = L.geoJSON(null, {
    pane: "hotspots",
    bubblingMouseEvents: false,
    style: function (feature) {
      var strong = feature.properties["class"] === "hot99";
      return { color: "#ff3b30", weight: (strong ? 3 : 2) * scale, fillColor: "#ff3b30", fillOpacity: strong ? 0.3 : 0.15 };
    },
    onEachFeature: function (feature, layer) {
      // A node, not a string: Leaflet writes a string tooltip as HTML, and names are imported data.
      layer.bindTooltip(M.el("span", null, feature.properties.name + " · " + interpolate(gettext("%(n)s events"), { n: feature.properties.count }, true)));
      layer.on("click", function () { openSummary(feature.properties.code); });
    }
  }).addTo(map);
  var warningLayer = L.geoJSON(null, {
    pane: "hotspots",
    bubblingMouseEvents: false,
    style: function () { return { color: "#ffb020", weight: 3 * scale, dashArray: (6 * scale) + " " + (4 * scale), fillOpacity: 0.05, fillColor: "#ffb020" }; },
    onEachFeature: function (feature, layer) {
      var p = feature.properties;
      layer.bindTooltip(M.el("span", null, p.name + " · " + interpolate(gettext("early warning: %(n)s in 7 days (usual %(mean)s)"), { n: p.last_7_days, mean: p.baseline_mean }, true)));
      layer.on("click", function () { openSummary(p.code); });
    }
  }).addTo(map);

  var eventLayer = L.layerGroup([], { pane: "events" }).addTo(map);

  // --- KPIs ---------------------------------------------------------------------------------------

  var kpiNodes = {};
  Array.prototype.forEach.call(document.querySelectorAll("#kpis .kpi"), function (node) {
    kpiNodes[node.dataset.kpi] = { value: node.querySelector(".kpi-value"), note: node.querySelector(".kpi-note"), node: node };
  });

  function setKpi(name, text, note) {
    var slot = kpiNodes[name];
    if (slot.value.textContent !== text) {
      slot.value.textContent = text;
      if (slot.node.animate) { slot.node.animate([{ opacity: 0.35 }, { opacity: 1 }], { duration: 800 }); }
    }
    slot.note.textContent = note || "";
  }

  function loadKpis() {
    var generation = state.generation;
    return M.fetchJSON(cfg.urls.kpis + windowQuery()).then(function (body) {
      if (generation !== state.generation) { return; }
      var k = body.kpis;
      var label = windowLabel();
      setKpi("received_today", M.formatNumber(k.received_today), state.window === "today" ? "" : interpolate(gettext("%(n)s in %(window)s"), { n: M.formatNumber(k.received), window: label }, true));
      setKpi("open", M.formatNumber(k.open), interpolate(gettext("%(n)s escalated"), { n: M.formatNumber(k.escalated) }, true));
      setKpi("overdue", M.formatNumber(k.overdue), gettext("now"));
      setKpi("completion_rate", M.formatPercent(k.completion_rate), interpolate(gettext("%(done)s of %(all)s, %(window)s"), { done: M.formatNumber(k.completed), all: M.formatNumber(k.received), window: label }, true));
      setKpi("on_time_rate", M.formatPercent(k.on_time_rate), interpolate(gettext("%(n)s on time, %(window)s"), { n: M.formatNumber(k.on_time), window: label }, true));
      setKpi("satisfaction_rate", M.formatPercent(k.satisfaction_rate), k.satisfaction_mean === null ? gettext("no ratings yet") : interpolate(gettext("mean %(mean)s / 5 of %(n)s ratings"), { mean: M.formatNumber(k.satisfaction_mean, 1), n: M.formatNumber(k.rated) }, true));
    });
  }

  // --- cases and streets ---------------------------------------------------------------------------

  function familyClass(code) { return "family-" + String(code || "").split(".")[0]; }

  function areaText(parts) {
    return parts.filter(function (part) { return part && part.name; }).map(function (part) { return part.name; }).join(" · ");
  }

  function caseItem(item, kind) {
    var when = kind === "overdue"
      ? interpolate(gettext("%(h)s h overdue"), { h: M.formatNumber(item.overdue_hours, 1) }, true)
      : interpolate(gettext("escalated ×%(n)s"), { n: item.escalation_level }, true);
    return el("li", { class: "is-" + kind, dataset: { id: item.id, lon: item.location ? item.location.lon : "", lat: item.location ? item.location.lat : "", code: item.grid ? item.grid.code : "" } },
      el("span", { class: "what " + familyClass(item.category.code) }, item.category.name + " · " + (STATUS[item.status] || item.status)),
      el("span", { class: "when" }, when),
      el("span", { class: "where" }, areaText([item.street, item.community, item.grid]) || gettext("not located")));
  }

  function fillList(node, items, make, emptyText) {
    if (!items.length) {
      node.replaceChildren(el("li", { class: "mq-empty" }, emptyText));
      return;
    }
    node.replaceChildren.apply(node, items.map(make));
  }

  /* The overdue and escalated lists hold more cases than their panels show: they turn pages by
   * themselves every CASES_ROTATE_MS (a wall no one touches shows every case in turn), with
   * "1/4" beside the title. A page is as many whole items as the panel holds. */
  var caseLists = {
    overdue: { list: document.getElementById("overdue-cases"), pager: document.getElementById("overdue-pager"), page: 0, pages: 1 },
    escalated: { list: document.getElementById("escalated-cases"), pager: document.getElementById("escalated-pager"), page: 0, pages: 1 }
  };

  function paginate(entry) {
    var items = Array.prototype.slice.call(entry.list.children);
    items.forEach(function (item) { item.classList.remove("mq-hidden"); });
    var bottom = entry.list.getBoundingClientRect().bottom;
    var fit = items.filter(function (item) { return item.getBoundingClientRect().bottom <= bottom + 1; }).length;
    fit = Math.max(1, fit);
    entry.size = fit;
    entry.pages = Math.max(1, Math.ceil(items.length / fit));
    entry.page = Math.min(entry.page, entry.pages - 1);
    showPage(entry);
  }

  function showPage(entry) {
    var start = entry.page * entry.size;
    Array.prototype.forEach.call(entry.list.children, function (item, index) {
      item.classList.toggle("mq-hidden", entry.pages > 1 && (index < start || index >= start + entry.size));
    });
    entry.pager.textContent = entry.pages > 1 ? interpolate(gettext("page %(page)s of %(pages)s"), { page: entry.page + 1, pages: entry.pages }, true) : "";
  }

  function rotateCases() {
    Object.keys(caseLists).forEach(function (kind) {
      var entry = caseLists[kind];
      if (entry.pages < 2) { return; }
      entry.page = (entry.page + 1) % entry.pages;
      showPage(entry);
    });
  }
  intervals.push(setInterval(rotateCases, CASES_ROTATE_MS));

  function loadCases() {
    return M.fetchJSON(cfg.urls.cases + query({ limit: cfg.casesLimit })).then(function (body) {
      fillList(caseLists.overdue.list, body.overdue.results, function (item) { return caseItem(item, "overdue"); }, gettext("No overdue cases"));
      fillList(caseLists.escalated.list, body.escalated.results, function (item) { return caseItem(item, "escalated"); }, gettext("No escalated cases"));
      document.getElementById("overdue-total").textContent = "(" + M.formatNumber(body.overdue.total) + ")";
      document.getElementById("escalated-total").textContent = "(" + M.formatNumber(body.escalated.total) + ")";
      paginate(caseLists.overdue);
      paginate(caseLists.escalated);
    });
  }

  var STREETS_SHOWN = 12;

  /* A bar of the given share; its width goes through the CSSOM (a style attribute would need
   * style-src 'unsafe-inline'). */
  function bar(share) {
    var fill = el("i");
    fill.style.width = Math.round(100 * share) + "%";
    return fill;
  }
  function loadStreets() {
    var generation = state.generation;
    return M.fetchJSON(cfg.urls.streets + windowQuery()).then(function (body) {
      if (generation !== state.generation) { return; }
      var streets = body.streets.slice(0, STREETS_SHOWN);
      var top = streets.length ? Math.max(1, streets[0].received) : 1;
      Array.prototype.forEach.call(document.querySelectorAll(".wall-window-label"), function (node) { node.textContent = windowLabel(); });
      fillList(document.getElementById("street-ranking"), streets, function (street) {
        return el("li", { dataset: { code: street.code } },
          el("span", { class: "rank" }, String(street.rank)),
          el("span", { class: "name" }, street.name),
          el("span", { class: "figures" }, interpolate(gettext("%(received)s · open %(open)s · overdue %(overdue)s"), { received: M.formatNumber(street.received), open: M.formatNumber(street.open), overdue: M.formatNumber(street.overdue) }, true)),
          el("span", { class: "bar" }, bar(street.received / top)));
      }, gettext("No streets"));
    });
  }

  // --- hot spots and early warnings ---------------------------------------------------------------

  function loadHotspots() {
    var generation = state.generation;
    var w = currentWindow();
    var family = state.family;
    return Promise.all([
      M.fetchJSON(cfg.urls.hotspots + query({ family: family, since: w.since, until: w.until }), { timeoutMs: 30000 }),
      M.fetchJSON(cfg.urls.earlyWarnings + query({ family: family }), { timeoutMs: 30000 })
    ]).then(function (answers) {
      if (generation !== state.generation) { return; }
      var features = answers[0].features;
      gridGeometry = {};
      features.forEach(function (feature) { gridGeometry[feature.properties.code] = feature.geometry; });
      hotLayer.clearLayers();
      hotLayer.addData(features.filter(function (feature) { return /^hot/.test(feature.properties["class"]); }));
      warningLayer.clearLayers();
      warningLayer.addData(answers[1].warnings.filter(function (w) { return gridGeometry[w.code]; }).map(function (w) {
        return { type: "Feature", geometry: gridGeometry[w.code], properties: w };
      }));
    });
  }

  // --- live feed ------------------------------------------------------------------------------------

  var feedNode = document.getElementById("feed");
  var feed = []; // newest first: {id, item (li), marker}

  /* The time of receipt: the time alone for today (Beijing time), with the date for an older
   * event, so that yesterday's 22:49 is not read as a time of today. */
  function receivedText(value) {
    var sameDay = dayFormat.format(new Date(value)) === today();
    return sameDay ? M.formatDateTime(value, { month: undefined, day: undefined }) : M.formatDateTime(value);
  }

  function whatText(event) {
    return (event.category ? event.category.name : "—") + " · " + (STATUS[event.status] || event.status);
  }

  function eventItem(event, fresh) {
    var family = event.category ? event.category.code : "";
    var areas = event.areas || {};
    var grid = areas.grid_small;
    return el("li", { class: fresh ? "is-new" : "", dataset: { id: event.id, status: event.status, received: event.received_at, lon: event.location ? event.location.lon : "", lat: event.location ? event.location.lat : "", code: grid ? grid.code : "" } },
      el("span", { class: "what " + familyClass(family) }, whatText(event)),
      el("time", { class: "when", datetime: event.received_at }, receivedText(event.received_at)),
      el("span", { class: "where" }, areaText([areas.street, areas.community, grid]) || event.address_text || gettext("not located")));
  }

  function eventMarker(event, fresh) {
    if (!event.location) { return null; }
    var family = (event.category ? event.category.code : "").split(".")[0];
    var color = FAMILY_COLOURS[family] || FAMILY_COLOURS.other;
    var marker = L.circleMarker([event.location.lat, event.location.lon], {
      pane: "events", bubblingMouseEvents: false, radius: (fresh ? 9 : 5) * scale, color: color, weight: 2 * scale, fillColor: color, fillOpacity: fresh ? 0.9 : 0.6
    });
    marker.bindTooltip(M.el("span", null, (event.category ? event.category.name : "") + " · " + M.formatDateTime(event.received_at)));
    if (fresh) {
      // The highlight fades after a minute; the timer is the marker's only, cleared with it.
      marker._minqingTimer = setTimeout(function () { marker.setRadius(5 * scale); marker.setStyle({ fillOpacity: 0.6 }); }, NEW_EVENT_MS);
    }
    return marker;
  }

  function dropOldest() {
    var gone = feed.pop();
    if (gone.marker) {
      clearTimeout(gone.marker._minqingTimer);
      eventLayer.removeLayer(gone.marker);
    }
    gone.item.remove();
  }

  /* events: newest first. fresh: they arrived while the wall was watching. */
  function addEvents(events, fresh) {
    var known = {};
    feed.forEach(function (entry) { known[entry.id] = true; });
    var added = events.filter(function (event) { return !known[event.id]; });
    if (!added.length) { return 0; }
    if (feedNode.querySelector(".mq-loading, .mq-empty")) { feedNode.replaceChildren(); }
    // Each goes where its time of receipt puts it (newest first), whatever order they came in.
    added.forEach(function (event) {
      var entry = { id: event.id, received: event.received_at, item: eventItem(event, fresh), marker: eventMarker(event, fresh) };
      var at = 0;
      while (at < feed.length && (feed[at].received > entry.received || (feed[at].received === entry.received && feed[at].id > entry.id))) { at += 1; }
      feedNode.insertBefore(entry.item, at < feed.length ? feed[at].item : null);
      if (entry.marker) { eventLayer.addLayer(entry.marker); }
      feed.splice(at, 0, entry);
      while (feed.length > cfg.feedSize) { dropOldest(); }
    });
    return added.length;
  }

  function pollFeed() {
    var first = state.newest === null;
    var url = cfg.urls.events + query(first ? { limit: 20 } : { since: state.newest, limit: cfg.feedSize });
    return M.fetchJSON(url).then(function (body) {
      var events = body.results;
      if (events.length && (state.newest === null || events[0].received_at > state.newest)) {
        state.newest = events[0].received_at;
      }
      if (first && !events.length) {
        state.newest = new Date().toISOString();
        feedNode.replaceChildren(el("li", { class: "mq-empty" }, gettext("No events yet")));
      }
      var added = addEvents(events, !first);
      if (added && !first) { scheduleFigures(); }
    });
  }

  /* The events on the list change status (accepted, resolved, escalated …) after they arrived:
   * every STATUS_INTERVAL_MS the shown ones are read again (one page: everything received since
   * the oldest shown) and their status, colour and times brought up to date. */
  function refreshFeed() {
    if (!feed.length) { return Promise.resolve(); }
    var oldest = feed[feed.length - 1].received;
    return M.fetchJSON(cfg.urls.events + query({ since: oldest, limit: cfg.feedSize })).then(function (body) {
      var byId = {};
      body.results.forEach(function (event) { byId[event.id] = event; });
      feed.forEach(function (entry) {
        var event = byId[entry.id];
        if (!event || entry.item.dataset.status === event.status) { return; }
        entry.item.dataset.status = event.status;
        entry.item.querySelector(".what").textContent = whatText(event);
      });
      addEvents(body.results, true);
    });
  }

  // New events change the figures: refresh them soon, once per burst.
  var figuresTimer = null;
  function scheduleFigures() {
    if (figuresTimer) { return; }
    figuresTimer = setTimeout(function () {
      figuresTimer = null;
      kpiPoller.poke();
      listsPoller.poke();
    }, 1500);
  }

  // Clicking an event or a case: fly there and show its grid.
  function onListClick(e) {
    var item = e.target.closest("li[data-lat]");
    if (!item || !item.dataset.lat) { return; }
    map.flyTo([parseFloat(item.dataset.lat), parseFloat(item.dataset.lon)], Math.max(map.getZoom(), 15), { duration: 1 });
    if (item.dataset.code) { openSummary(item.dataset.code); }
  }
  ["feed", "overdue-cases", "escalated-cases"].forEach(function (id) { document.getElementById(id).addEventListener("click", onListClick); });
  document.getElementById("street-ranking").addEventListener("click", function (e) {
    var item = e.target.closest("li[data-code]");
    if (item) { openSummary(item.dataset.code); }
  });

  // --- area summary -------------------------------------------------------------------------------

  var summaryNode = document.getElementById("area-summary");
  var chart = null;
  var echartsLoading = null;

  /* ECharts (about 1 MB) is loaded the first time a summary opens, not with the page. */
  function loadEcharts() {
    if (window.echarts) { return Promise.resolve(window.echarts); }
    if (!echartsLoading) {
      echartsLoading = new Promise(function (resolve, reject) {
        var script = el("script", { src: cfg.urls.echarts });
        script.addEventListener("load", function () { resolve(window.echarts); });
        script.addEventListener("error", function () { echartsLoading = null; reject(new Error("echarts")); });
        document.head.appendChild(script);
      });
    }
    return echartsLoading;
  }

  /* The summary's period: the wall's window, or the last 30 days when that is under a week
   * (a trend of one or two days says nothing). */
  function summaryWindow() {
    var w = currentWindow();
    var days = w.until ? (new Date(w.until) - new Date(w.since)) / 86400000 : (new Date(today()) - new Date(w.since)) / 86400000 + 1;
    if (days < 7) { return { since: addDays(today(), -29), until: null, label: gettext("last 30 days") }; }
    return { since: w.since, until: w.until, label: windowLabel() };
  }

  function openSummary(code) {
    if (!code) { return; }
    state.summaryCode = code;
    var period = summaryWindow();
    summaryNode.classList.remove("mq-hidden");
    document.getElementById("summary-title").textContent = gettext("Loading…");
    document.getElementById("summary-subtitle").textContent = "";
    M.fetchJSON(cfg.urls.areaSummary.replace("CODE", encodeURIComponent(code)) + query({ since: period.since, until: period.until })).then(function (body) {
      if (state.summaryCode !== code) { return; }
      renderSummary(body, period.label);
    }, function (error) {
      if (state.summaryCode !== code) { return; }
      document.getElementById("summary-title").textContent = gettext("Summary unavailable");
      document.getElementById("summary-subtitle").textContent = error.message || "";
    });
  }

  function figure(label, value) {
    return el("div", {}, el("dt", {}, label), el("dd", {}, value));
  }

  function renderSummary(body, periodLabel) {
    summaryNode.dataset.code = body.code;
    document.getElementById("summary-title").textContent = body.name;
    document.getElementById("summary-subtitle").textContent = [AREA_KIND[body.kind] || body.kind, body.code, body.parent ? body.parent.name : ""].filter(Boolean).join(" · ");
    var ev = body.events;
    document.getElementById("summary-figures").replaceChildren(
      figure(gettext("Residents"), M.formatNumber(body.residents)),
      figure(gettext("Dwellings"), M.formatNumber(body.dwellings)),
      figure(gettext("Buildings"), M.formatNumber(body.buildings)),
      figure(gettext("Units"), M.formatNumber(body.units)),
      figure(gettext("Open"), M.formatNumber(ev.open)),
      figure(gettext("Overdue"), M.formatNumber(ev.overdue)),
      figure(interpolate(gettext("Events, %(window)s"), { window: periodLabel }, true), M.formatNumber(ev.received)),
      figure(gettext("Completion rate"), M.formatPercent(ev.completion_rate))
    );
    loadEcharts().then(function (echarts) {
      var node = document.getElementById("summary-trend");
      if (!chart) { chart = echarts.init(node, "dark", { renderer: "canvas" }); }
      var fontSize = Math.round(12 * scale);
      chart.setOption({
        backgroundColor: "transparent",
        animation: false,
        grid: { left: 40 * scale, right: 12 * scale, top: 24 * scale, bottom: 24 * scale },
        title: { text: gettext("Events per day"), textStyle: { fontSize: fontSize, fontWeight: "normal" }, left: 0, top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: body.trend.map(function (d) { return d.date.slice(5); }), axisLabel: { fontSize: fontSize } },
        yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: fontSize } },
        series: [{ type: "line", data: body.trend.map(function (d) { return d.count; }), smooth: false, areaStyle: { opacity: 0.25 }, symbol: "none" }]
      }, true);
      chart.resize();
    }, function () { /* no chart: the figures are still shown */ });
  }

  document.getElementById("summary-close").addEventListener("click", function () {
    state.summaryCode = null;
    summaryNode.classList.add("mq-hidden");
  });

  // --- window, family, time-lapse -----------------------------------------------------------------

  function press(groupId, attribute, value) {
    Array.prototype.forEach.call(document.querySelectorAll("#" + groupId + " button"), function (button) {
      button.setAttribute("aria-pressed", String(button.dataset[attribute] === value));
    });
  }

  function changed() {
    state.generation += 1;
    stopTimelapse();
    showHeat(heatUrl(currentWindow()));
    kpiPoller.poke();
    listsPoller.poke();
    hotPoller.poke();
    if (state.summaryCode) { openSummary(state.summaryCode); }
  }

  var customForm = document.getElementById("custom-window");
  document.getElementById("window-switch").addEventListener("click", function (e) {
    var button = e.target.closest("button[data-window]");
    if (!button) { return; }
    if (button.dataset.window === "custom") {
      customForm.classList.remove("mq-hidden");
      if (!customForm.elements.from.value) {
        customForm.elements.from.value = addDays(today(), -6);
        customForm.elements.to.value = today();
      }
      customForm.elements.from.focus();
      return;
    }
    customForm.classList.add("mq-hidden");
    state.window = button.dataset.window;
    press("window-switch", "window", state.window);
    changed();
  });
  customForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var from = customForm.elements.from.value;
    var to = customForm.elements.to.value;
    if (!from || !to || from > to) {
      customForm.elements.to.setCustomValidity(gettext("The end must not be before the start."));
      customForm.reportValidity();
      return;
    }
    customForm.elements.to.setCustomValidity("");
    state.window = "custom";
    state.custom = { from: from, to: to };
    press("window-switch", "window", "custom");
    changed();
  });
  document.getElementById("family-switch").addEventListener("click", function (e) {
    var button = e.target.closest("button[data-family]");
    if (!button || button.dataset.family === state.family) { return; }
    state.family = button.dataset.family;
    press("family-switch", "family", state.family);
    changed();
  });

  var timelapseButton = document.getElementById("timelapse");
  var timelapseLabel = document.getElementById("timelapse-label");

  /* Steps the heat map one day at a time over the window (over the last 14 days when the window
   * is shorter than 2 days), looping until stopped. */
  function startTimelapse() {
    var w = currentWindow();
    var last = w.until ? addDays(w.until, -1) : today();
    var first = w.since;
    if (first >= addDays(last, -1)) { first = addDays(last, -13); }
    var days = [];
    for (var day = first; day <= last; day = addDays(day, 1)) { days.push(day); }
    var index = 0;
    function step() {
      // The next day only once this one is on the wall (a slow tile holds the step, never blanks it).
      if (heatLoading()) { return; }
      var day = days[index % days.length];
      showHeat(heatUrl({ since: day, until: addDays(day, 1) }), function () { timelapseLabel.textContent = day; });
      index += 1;
    }
    state.timelapse = setInterval(step, TIMELAPSE_STEP_MS);
    step();
    timelapseLabel.classList.remove("mq-hidden");
    timelapseButton.setAttribute("aria-pressed", "true");
  }

  function stopTimelapse() {
    if (state.timelapse === null) { return; }
    clearInterval(state.timelapse);
    state.timelapse = null;
    timelapseLabel.classList.add("mq-hidden");
    timelapseButton.setAttribute("aria-pressed", "false");
    showHeat(heatUrl(currentWindow()));
  }

  timelapseButton.addEventListener("click", function () {
    if (state.timelapse === null) { startTimelapse(); } else { stopTimelapse(); }
  });

  // --- start ---------------------------------------------------------------------------------------

  // The feed backs off at most to FEED_RETRY_MAX_MS: a wall that lost its network for a while
  // shows live data again within seconds of its return, not after a long backoff.
  var feedPoller = new M.Poller(pollFeed, { intervalMs: FEED_INTERVAL_MS, maxIntervalMs: FEED_RETRY_MAX_MS, onState: onFeedState });
  var statusPoller = new M.Poller(refreshFeed, { intervalMs: STATUS_INTERVAL_MS, maxIntervalMs: LISTS_INTERVAL_MS });
  var kpiPoller = new M.Poller(loadKpis, { intervalMs: KPI_INTERVAL_MS, maxIntervalMs: KPI_INTERVAL_MS });
  var listsPoller = new M.Poller(function () { return Promise.all([loadCases(), loadStreets()]); }, { intervalMs: LISTS_INTERVAL_MS, maxIntervalMs: LISTS_INTERVAL_MS });
  var hotPoller = new M.Poller(loadHotspots, { intervalMs: HOTSPOT_INTERVAL_MS, maxIntervalMs: HOTSPOT_INTERVAL_MS });
  pollers.push(kpiPoller.start(), feedPoller.start(), listsPoller.start(), statusPoller.start());
  // The browser knows when its network is back: everything is asked again at once.
  window.addEventListener("online", function () { pollers.forEach(function (poller) { poller.poke(); }); });
  // The tiles come after the figures' requests are on their way: a browser opens six
  // connections to a host, and a map's first tiles would otherwise take them all.
  setTimeout(function () { baseLayers.forEach(function (layer) { layer.addTo(map); }); }, 0);
  // Hot spots are the heaviest answer: fetched once the first figures are on screen.
  setTimeout(function () { pollers.push(hotPoller.start()); }, 800);

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      map.invalidateSize();
      if (chart) { chart.resize(); }
      paginate(caseLists.overdue);
      paginate(caseLists.escalated);
    }, 200);
  });

  window.addEventListener("pagehide", function () {
    pollers.forEach(function (poller) { poller.stop(); });
    intervals.forEach(clearInterval);
    stopTimelapse();
    clearTimeout(figuresTimer);
  });

  // For the browser tests and for an operator's console: read-only views of the wall's state.
  window.MinqingWall = {
    map: map,
    heatUrl: function () { return heatWanted; },
    feedSize: function () { return feed.length; },
    rotateCases: rotateCases,
    markerCount: function () { return eventLayer.getLayers().length; },
    openSummary: openSummary
  };
})();
