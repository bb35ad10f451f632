/* The analyst workbench (/analyst/).
 *
 * One state object holds the chosen layer and the filters; every change re-draws what depends on
 * it: the preview map (vector tiles of the layer with the filters it accepts, over the offline
 * basemap), the figures, chart and table (/api/statistics/…), the export links, the OGC API
 * addresses and the heat GeoTIFF links. The filters also live in the page's query string, so a
 * reload or a shared link shows the same view.
 *
 * Requests that a newer change superseded are aborted and their answers ignored. Every panel
 * shows a loading, an empty and an error state. No inline script: the configuration comes from
 * the json_script element "analyst-config"; every text goes through gettext().
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var el = M.el;
  var config = M.config("analyst-config");
  var urls = config.urls;
  var english = M.lang === "en";

  /* The filters the statistics and the events layer share (UI state → query parameters). */
  var FILTER_NAMES = ["region", "grid", "category", "status", "since", "until"];
  var FORMAT_LABELS = { geojson: "GeoJSON", gpkg: "GeoPackage", csv: "CSV", shp: "Shapefile" };

  var state = {
    layerId: "events",
    layers: [],
    street: "",
    community: "",
    grid: "",
    since: "",
    until: "",
    category: "",
    status: "",
    level: "street",
    interval: "week",
    sort: { key: "events", dir: -1 },
    areas: null
  };

  function $(id) { return document.getElementById(id); }

  function show(node, visible) { node.classList.toggle("mq-hidden", !visible); }

  function setState(node, kind, text) {
    /* kind: "loading" | "empty" | "error" | null (hidden) */
    node.className = "an-state " + (kind === "error" ? "mq-error" : kind === "empty" ? "mq-empty" : "mq-loading");
    node.textContent = text || "";
    show(node, !!kind);
  }

  function withQuery(path, query) {
    var search = new URLSearchParams();
    Object.keys(query).forEach(function (key) {
      if (query[key] !== "" && query[key] !== null && query[key] !== undefined) { search.set(key, query[key]); }
    });
    var text = search.toString();
    return text ? path + "?" + text : path;
  }

  function dayAfter(isoDate) {
    var parts = isoDate.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2] + 1)).toISOString().slice(0, 10);
  }

  function localDate(offsetDays) {
    var now = new Date();
    var day = new Date(now.getFullYear(), now.getMonth(), now.getDate() + offsetDays);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return day.getFullYear() + "-" + pad(day.getMonth() + 1) + "-" + pad(day.getDate());
  }

  /* The filters as API parameters: the finest region chosen, the grid, and the window with an
   * exclusive end (the form's "to" date is inclusive). */
  function filterQuery() {
    return {
      region: state.community || state.street,
      grid: state.grid,
      category: state.category,
      status: state.status,
      since: state.since,
      until: state.until ? dayAfter(state.until) : ""
    };
  }

  function currentLayer() {
    return state.layers.filter(function (layer) { return layer.id === state.layerId; })[0] || null;
  }

  /* The part of the filters a layer accepts (its catalog entry lists them), and the rest. */
  function layerFilters(layer) {
    var accepted = {};
    var ignored = [];
    var query = filterQuery();
    var names = (layer ? layer.filters : []).map(function (f) { return f.name; });
    FILTER_NAMES.forEach(function (name) {
      if (!query[name]) { return; }
      if (names.indexOf(name) >= 0) { accepted[name] = query[name]; } else { ignored.push(name); }
    });
    return { accepted: accepted, ignored: ignored };
  }

  function filterLabel(name) {
    return {
      region: gettext("Area"), grid: gettext("Small grid"), category: gettext("Category"),
      status: gettext("Status"), since: gettext("Received from"), until: gettext("Received to (inclusive)")
    }[name] || name;
  }

  function layerTitle(layer) { return english ? layer.title_en : layer.title; }

  function choiceName(choice) { return english ? (choice.name_en || choice.code.replace(/_/g, " ")) : choice.name; }

  /* --- the query string ------------------------------------------------------------------- */

  var URL_KEYS = ["layer", "street", "community", "grid", "since", "until", "category", "status", "level", "interval"];

  function readLocation() {
    var search = new URLSearchParams(window.location.search);
    URL_KEYS.forEach(function (key) {
      var value = search.get(key);
      if (value === null) { return; }
      if (key === "layer") { state.layerId = value; } else { state[key] = value; }
    });
    if (config.levels.indexOf(state.level) < 0) { state.level = "street"; }
    if (config.intervals.indexOf(state.interval) < 0) { state.interval = "week"; }
  }

  function writeLocation() {
    var query = {};
    URL_KEYS.forEach(function (key) { query[key] = key === "layer" ? state.layerId : state[key]; });
    window.history.replaceState(null, "", withQuery(window.location.pathname, query));
  }

  /* --- the layer catalog ------------------------------------------------------------------- */

  function renderCatalog() {
    var list = $("catalog");
    list.replaceChildren();
    state.layers.forEach(function (layer) {
      var colour = typeof layer.style.color === "string" ? layer.style.color : (layer.style.colors || ["#888"])[2];
      var button = el("button", {
        type: "button",
        "aria-pressed": String(layer.id === state.layerId),
        dataset: { layer: layer.id },
        onclick: function () { chooseLayer(layer.id); }
      },
        el("span", { class: "an-layer-title" }, el("span", { class: "an-swatch", "data-colour": colour }), layerTitle(layer)),
        el("span", { class: "an-layer-desc" }, layer.description));
      // The colour comes from the catalog; set through the CSSOM (a style attribute would be inline style).
      button.querySelector(".an-swatch").style.background = colour;
      list.appendChild(el("li", null, button));
    });
  }

  function chooseLayer(id) {
    state.layerId = id;
    Array.prototype.forEach.call($("catalog").querySelectorAll("button"), function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.layer === id));
    });
    writeLocation();
    refreshMap();
    refreshLinks();
  }

  function loadCatalog() {
    setState($("catalog-state"), "loading", gettext("Loading…"));
    return M.fetchJSON(urls.layers).then(function (body) {
      state.layers = body.layers;
      if (!currentLayer() && state.layers.length) { state.layerId = state.layers[0].id; }
      setState($("catalog-state"), state.layers.length ? null : "empty", gettext("No layer may be read with this account."));
      renderCatalog();
      refreshMap();
      refreshLinks();
    }, function (error) {
      setState($("catalog-state"), "error", error.message);
    });
  }

  /* --- filter controls -------------------------------------------------------------------- */

  function fillSelect(select, options, emptyLabel, value) {
    select.replaceChildren(el("option", { value: "" }, emptyLabel));
    options.forEach(function (option) { select.appendChild(el("option", { value: option.code }, option.label)); });
    select.value = options.some(function (o) { return o.code === value; }) ? value : "";
    return select.value;
  }

  function areaOptions(query) {
    return M.fetchJSON(withQuery(urls.areas, query)).then(function (body) {
      return body.areas.map(function (area) { return { code: area.code, label: area.name }; });
    });
  }

  function loadStreets() {
    return areaOptions({ level: "street" }).then(function (options) {
      state.street = fillSelect($("f-street"), options, gettext("All streets"), state.street);
    });
  }

  function loadCommunities() {
    var select = $("f-community");
    select.disabled = !state.street;
    if (!state.street) {
      state.community = fillSelect(select, [], gettext("All communities"), "");
      return Promise.resolve();
    }
    return areaOptions({ level: "community", region: state.street }).then(function (options) {
      state.community = fillSelect(select, options, gettext("All communities"), state.community);
    });
  }

  function loadGrids() {
    var select = $("f-grid");
    var region = state.community || state.street;
    select.disabled = !region;
    if (!region) {
      state.grid = fillSelect(select, [], gettext("All grids"), "");
      return Promise.resolve();
    }
    return areaOptions({ level: "grid", region: region }).then(function (options) {
      state.grid = fillSelect(select, options, gettext("All grids"), state.grid);
    });
  }

  function fillChoices() {
    var category = $("f-category");
    var families = el("optgroup", { label: gettext("Families") });
    config.choices.families.forEach(function (c) { families.appendChild(el("option", { value: c.code }, choiceName(c))); });
    category.appendChild(families);
    config.choices.families.forEach(function (family) {
      var group = el("optgroup", { label: choiceName(family) });
      config.choices.categories.forEach(function (c) {
        if (c.family === family.code) { group.appendChild(el("option", { value: c.code }, choiceName(c))); }
      });
      if (group.children.length) { category.appendChild(group); }
    });
    category.value = state.category;
    var status = $("f-status");
    config.choices.statuses.forEach(function (s) { status.appendChild(el("option", { value: s.code }, choiceName(s))); });
    status.value = state.status;
    $("f-since").value = state.since;
    $("f-until").value = state.until;
    markQuick();
  }

  function markQuick() {
    var today = localDate(0);
    Array.prototype.forEach.call(document.querySelectorAll(".an-quick button"), function (button) {
      var days = Number(button.dataset.days);
      var active = days === 0 ? !state.since && !state.until : state.until === today && state.since === localDate(1 - days);
      button.setAttribute("aria-pressed", String(active));
    });
  }

  function markSegments() {
    Array.prototype.forEach.call(document.querySelectorAll("#level-switch button"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.level === state.level));
    });
    Array.prototype.forEach.call(document.querySelectorAll("#interval-switch button"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.interval === state.interval));
    });
  }

  /* The window's end before its start is the reader's slip, said in their language next to the
   * dates; no request is sent and no figure of the previous filters stays on screen. */
  function datesInverted() {
    var inverted = !!(state.since && state.until && state.since > state.until);
    $("f-until").setAttribute("aria-invalid", inverted ? "true" : "false");
    if (inverted) {
      var message = gettext("The end date is before the start date: choose an end on or after the start.");
      showError({ message: message });
      Object.keys(requests).forEach(function (kind) { if (requests[kind]) { requests[kind].abort(); requests[kind] = null; } });
      Array.prototype.forEach.call(document.querySelectorAll("[data-kpi]"), function (node) { node.textContent = "—"; });
      $("stats-table").tBodies[0].replaceChildren();
      if ($("stats-table").tFoot) { $("stats-table").deleteTFoot(); }
      $("table-note").textContent = "";
      setState($("table-state"), "error", message);
      setState($("series-state"), "error", message);
      setState($("ranking-state"), "error", message);
      seriesChart.clear();
      rankingChart.clear();
    }
    return inverted;
  }

  var changeTimer = null;
  /* A filter changed: re-draw everything that depends on the filters (after a short pause, so a
   * burst of changes costs one round of requests). */
  function filtersChanged() {
    clearTimeout(changeTimer);
    changeTimer = setTimeout(function () {
      if (datesInverted()) { return; }
      writeLocation();
      markQuick();
      refreshMap();
      refreshLinks();
      refreshHighlight();
      refreshStatistics();
    }, 120);
  }

  function bindFilters() {
    $("f-street").addEventListener("change", function (event) {
      state.street = event.target.value;
      state.community = "";
      state.grid = "";
      Promise.all([loadCommunities(), loadGrids()]).then(filtersChanged, showError);
    });
    $("f-community").addEventListener("change", function (event) {
      state.community = event.target.value;
      state.grid = "";
      loadGrids().then(filtersChanged, showError);
    });
    $("f-grid").addEventListener("change", function (event) { state.grid = event.target.value; filtersChanged(); });
    $("f-category").addEventListener("change", function (event) { state.category = event.target.value; filtersChanged(); });
    $("f-status").addEventListener("change", function (event) { state.status = event.target.value; filtersChanged(); });
    $("f-since").addEventListener("change", function (event) { state.since = event.target.value; filtersChanged(); });
    $("f-until").addEventListener("change", function (event) { state.until = event.target.value; filtersChanged(); });
    Array.prototype.forEach.call(document.querySelectorAll(".an-quick button"), function (button) {
      button.addEventListener("click", function () {
        var days = Number(button.dataset.days);
        state.since = days ? localDate(1 - days) : "";
        state.until = days ? localDate(0) : "";
        $("f-since").value = state.since;
        $("f-until").value = state.until;
        filtersChanged();
      });
    });
    $("filters").addEventListener("reset", function (event) {
      event.preventDefault();
      ["street", "community", "grid", "since", "until", "category", "status"].forEach(function (key) { state[key] = ""; });
      ["f-street", "f-category", "f-status", "f-since", "f-until"].forEach(function (id) { $(id).value = ""; });
      Promise.all([loadCommunities(), loadGrids()]).then(filtersChanged, showError);
    });
    Array.prototype.forEach.call(document.querySelectorAll("#level-switch button"), function (button) {
      button.addEventListener("click", function () {
        state.level = button.dataset.level;
        markSegments();
        writeLocation();
        refreshAreas();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("#interval-switch button"), function (button) {
      button.addEventListener("click", function () {
        state.interval = button.dataset.interval;
        markSegments();
        writeLocation();
        refreshSeries();
      });
    });
  }

  /* Choose an area from a row of the table: a street, a community (and its street), or a small
   * grid (and its community and street). Statistical codes nest: a community's first nine digits
   * followed by 000 are its street's code. */
  function chooseArea(area) {
    if (state.level === "street") {
      state.street = area.code; state.community = ""; state.grid = "";
    } else if (state.level === "community") {
      state.street = area.code.slice(0, 9) + "000"; state.community = area.code; state.grid = "";
    } else {
      var community = area.parent ? area.parent.code : "";
      state.street = community ? community.slice(0, 9) + "000" : ""; state.community = community; state.grid = area.code;
    }
    $("f-street").value = state.street;
    loadCommunities().then(loadGrids).then(filtersChanged, showError);
  }

  function showError(error) {
    var node = $("filter-error");
    if (!error || (error.status === 0 && error.superseded)) { return; }
    node.textContent = error.message || String(error);
    show(node, true);
  }

  function clearError() { show($("filter-error"), false); }

  window.addEventListener("minqing:session-expired", function () {
    var node = $("filter-error");
    node.replaceChildren(gettext("Your session has expired."), " ",
      el("a", { href: "/accounts/login/?next=" + encodeURIComponent(window.location.pathname + window.location.search) }, gettext("Log in again")));
    show(node, true);
  });

  /* --- the preview map --------------------------------------------------------------------- */

  var map = L.map("preview-map", { zoomControl: true, attributionControl: true }).setView(config.center, config.zoom);
  // The attribution names the data as text: Leaflet's default prefix is a link out of the app.
  map.attributionControl.setPrefix(false);
  /* The whole of the reader's data (the extent of their small grids), when no area is chosen. */
  function fitData() {
    var b = config.bounds;
    if (b) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [12, 12], animate: false }); }
  }
  fitData();
  if (config.basemap) {
    L.tileLayer(config.basemap.url, {
      attribution: config.basemap.attribution,
      minZoom: config.basemap.minzoom,
      maxZoom: config.basemap.maxzoom
    }).addTo(map);
  }
  var vectorLayer = null;
  var highlight = null;

  function choropleth(style, value) {
    var colours = style.colors || ["#fff5eb", "#fdae6b", "#e6550d", "#a63603"];
    // Events per 1,000 residents; breaks around the demo city's spread (median near 70).
    var breaks = [40, 70, 100];
    var index = value === null || value === undefined ? 0 : breaks.filter(function (b) { return value >= b; }).length;
    return colours[Math.min(index, colours.length - 1)];
  }

  function featureStyle(layer) {
    var style = layer.style || {};
    return function (properties) {
      if (layer.geometry_type === "Point") {
        var colour = style.color || "#e74c3c";
        return { radius: style.radius || 4, color: "#ffffff", weight: 1, fill: true, fillColor: colour, fillOpacity: 0.85 };
      }
      if (style.choropleth) {
        return { color: "#8a5a44", weight: 0.5, fill: true, fillColor: choropleth(style, properties[style.choropleth]), fillOpacity: 0.7 };
      }
      var opacity = style.fillOpacity || 0;
      return { color: style.color || "#1f4e79", weight: style.weight || 1, fill: opacity > 0, fillColor: style.color, fillOpacity: opacity };
    };
  }

  function refreshMap() {
    var layer = currentLayer();
    if (vectorLayer) { map.removeLayer(vectorLayer); vectorLayer = null; }
    if (!layer) { return; }
    var url = withQuery(urls.tiles.replace("{layer}", layer.id), layerFilters(layer).accepted);
    var styles = {};
    styles[layer.id] = featureStyle(layer);
    vectorLayer = L.vectorGrid.protobuf(url, {
      vectorTileLayerStyles: styles,
      rendererFactory: L.canvas.tile,
      interactive: false,
      maxNativeZoom: layer.maxzoom,
      pane: "overlayPane"
    }).addTo(map);
    zoomNote();
  }

  function zoomNote() {
    var layer = currentLayer();
    var note = $("map-note");
    if (layer && map.getZoom() < layer.minzoom) {
      note.textContent = interpolate(gettext("Zoom in to level %(zoom)s to see this layer."), { zoom: layer.minzoom }, true);
      show(note, true);
    } else {
      show(note, false);
    }
  }

  /* The chosen area's outline (street, community or small grid) from the OGC collection of its
   * level; the map flies to it. */
  var highlightRequest = 0;
  function refreshHighlight() {
    var mine = ++highlightRequest;
    var collection = state.grid ? "grids_small" : state.community ? "regions_community" : state.street ? "regions_street" : "";
    var code = state.grid || state.community || state.street;
    if (highlight) { map.removeLayer(highlight); highlight = null; }
    if (!collection) { fitData(); return; }
    var url = withQuery(urls.ogcItems.replace("LAYER", collection), { f: "json", code: code, limit: 1 });
    M.fetchJSON(url).then(function (body) {
      if (mine !== highlightRequest || !body.features.length) { return; }
      highlight = L.geoJSON(body, { style: { color: "#0b63b6", weight: 3, dashArray: "6 4", fill: false }, interactive: false }).addTo(map);
      map.fitBounds(highlight.getBounds(), { padding: [20, 20], maxZoom: 16 });
    }, function () { /* an outline is a help, not a need: the filters still apply */ });
  }

  map.on("zoomend", zoomNote);
  map.on("moveend", refreshHeatLinks);

  /* --- the building sheet (楼盘表): a click on a building while the registry layers show ---- */
  var sheetDialog = document.getElementById("an-sheet-dialog");
  document.getElementById("an-sheet-close").addEventListener("click", function () { sheetDialog.close(); });
  map.on("click", function (e) {
    if (["buildings", "addresses", "units", "dwellings"].indexOf(state.layerId) < 0) { return; }
    M.fetchJSON(urls.sheetAt + "?lon=" + e.latlng.lng.toFixed(7) + "&lat=" + e.latlng.lat.toFixed(7)).then(function (sheet) {
      window.MinqingSheet.open(sheetDialog, sheet, config.sheetLabels);
    }, function () { /* no building there: nothing to show */ });
  });

  /* --- grid workers' duty figures for a month ---------------------------------------------- */
  var dutyMonth = document.getElementById("duty-month");
  function showDuty() {
    var query = dutyMonth.value ? "?month=" + dutyMonth.value : "";
    M.fetchJSON(urls.duty + query).then(function (body) {
      if (!dutyMonth.value) { dutyMonth.value = body.month; }
      var rows = body.results.map(function (r) {
        var cells = [r.grid.name + " " + r.grid.code, r.worker, r.visits, r.households_visited + " / " + r.households,
          r.coverage === null ? "—" : M.formatPercent(r.coverage), r.found_on_patrol, r.received,
          r.response_hours_median === null ? "—" : r.response_hours_median,
          r.resolution_hours_median === null ? "—" : r.resolution_hours_median];
        var tr = M.el("tr");
        cells.forEach(function (value, i) { tr.appendChild(M.el(i ? "td" : "th", i ? null : { scope: "row" }, String(value))); });
        return tr;
      });
      var tbody = document.querySelector("#duty-table tbody");
      tbody.replaceChildren.apply(tbody, rows);
    }, function () { /* the figures are optional on this page */ });
  }
  dutyMonth.addEventListener("change", showDuty);
  showDuty();

  /* --- exports, OGC and the heat GeoTIFF --------------------------------------------------- */

  function refreshLinks() {
    refreshHeatLinks();
    var layer = currentLayer();
    var box = $("exports");
    box.replaceChildren();
    if (!layer) { return; }
    var filters = layerFilters(layer);
    $("export-layer").textContent = layerTitle(layer);
    config.exportFormats.forEach(function (format) {
      var href = withQuery(urls.export.replace("{layer}", layer.id).replace("{format}", format), filters.accepted);
      var link = el("a", { href: href, download: "", dataset: { format: format } },
        FORMAT_LABELS[format] || format, el("span", { class: "an-format" }, "." + (format === "shp" ? "zip" : format)));
      if (FILE_FORMATS.indexOf(format) >= 0) {
        link.addEventListener("click", function (event) { event.preventDefault(); buildFile(href); });
      }
      box.appendChild(link);
    });
    $("export-note").textContent = filters.ignored.length
      ? interpolate(gettext("This layer does not take these filters: %(names)s."), { names: filters.ignored.map(filterLabel).join(english ? ", " : "、") }, true)
      : "";
    var origin = window.location.origin;
    $("ogc-landing").value = origin + urls.ogcLanding;
    $("ogc-items").value = origin + withQuery(urls.ogcItems.replace("LAYER", layer.id), Object.assign({ f: "json" }, filters.accepted));
    $("ogc-open").href = withQuery(urls.ogcItems.replace("LAYER", layer.id), Object.assign({ f: "html" }, filters.accepted));
  }

  /* GeoPackage and Shapefile are built by the server's export worker: the link queues a job
   * (or finds the one already asked for), the page follows its progress, then downloads it. */
  var FILE_FORMATS = ["gpkg", "shp"];
  var building = null;
  function buildFile(href) {
    if (building) { building.stop(); }
    var note = $("export-note");
    note.textContent = gettext("Preparing the file…");
    M.fetchJSON(href).then(function (job) {
      building = new M.Poller(function () {
        return M.fetchJSON(job.status_url).then(function (state) {
          if (state.status === "succeeded") {
            building.stop();
            note.textContent = gettext("The file is ready.");
            window.location.assign(state.download_url);
          } else if (state.status === "failed" || state.status === "expired") {
            building.stop();
            note.textContent = state.message || gettext("The file could not be built; try again.");
          } else {
            note.textContent = state.progress === null
              ? gettext("Preparing the file…")
              : interpolate(gettext("Building the file: %(percent)s%%"), { percent: Math.floor(state.progress * 100) }, true);
          }
        });
      }, { intervalMs: 1000, maxIntervalMs: 4000 });
      building.start();
    }, function (error) { note.textContent = error.message; });
  }

  var MERCATOR_HALF = 20037508.342789244;
  function mercator(lon, lat) {
    var clamped = Math.max(-85, Math.min(85, lat));
    return [lon * MERCATOR_HALF / 180, Math.log(Math.tan((90 + clamped) * Math.PI / 360)) * MERCATOR_HALF / Math.PI];
  }

  /* One link per heat family the category allows, for the map view: the resolution keeps the
   * raster within half the server's largest side. */
  function refreshHeatLinks() {
    var box = $("heat-links");
    box.replaceChildren();
    var bounds = map.getBounds();
    var west = Math.max(-180, bounds.getWest()), east = Math.min(180, bounds.getEast());
    var south = Math.max(-85, bounds.getSouth()), north = Math.min(85, bounds.getNorth());
    var low = mercator(west, south), high = mercator(east, north);
    var side = Math.max(high[0] - low[0], high[1] - low[1]);
    var resolution = Math.max(10, Math.ceil(side / (config.maxRasterSide / 2)));
    var family = state.category.split(".")[0];
    var families = config.heatFamilies.indexOf(family) >= 0 ? [family] : config.heatFamilies;
    var query = filterQuery();
    families.forEach(function (name) {
      var href = withQuery(urls.heatTiff, {
        family: name,
        since: query.since,
        until: query.until,
        bbox: [west, south, east, north].map(function (v) { return v.toFixed(5); }).join(","),
        resolution_m: resolution
      });
      var label = name === "dispute" ? gettext("Disputes") : name === "hazard" ? gettext("Hazards") : name;
      box.appendChild(el("a", { href: href, download: "", dataset: { family: name } }, label,
        el("span", { class: "an-format" }, interpolate(gettext("%(metres)s m per pixel"), { metres: resolution }, true))));
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), function (button) {
    button.addEventListener("click", function () {
      var input = $(button.dataset.copy);
      var done = function () {
        var note = $("copy-state");
        note.textContent = gettext("Copied.");
        show(note, true);
        setTimeout(function () { show(note, false); }, 2000);
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      } else {
        document.execCommand("copy");
        done();
      }
    });
  });

  /* --- statistics --------------------------------------------------------------------------- */

  var seriesChart = echarts.init($("series-chart"));
  // SVG: the ranking's names are text on the page (read by screen readers and the tests).
  var rankingChart = echarts.init($("ranking-chart"), null, { renderer: "svg" });
  window.addEventListener("resize", function () { seriesChart.resize(); rankingChart.resize(); });

  var requests = { areas: null, series: null };

  /* fetchJSON for one kind of request; a newer one aborts it, and its failure is then marked
   * superseded so that no panel reports it. */
  function latest(kind, url) {
    if (requests[kind]) { requests[kind].abort(); }
    var controller = new AbortController();
    requests[kind] = controller;
    return M.fetchJSON(url, { signal: controller.signal, timeoutMs: 30000 }).then(function (body) {
      if (requests[kind] !== controller) { throw { superseded: true, status: 0 }; }
      return body;
    }, function (error) {
      if (requests[kind] !== controller) { error.superseded = true; }
      throw error;
    });
  }

  function refreshStatistics() {
    clearError();
    refreshAreas();
    refreshSeries();
  }

  function refreshAreas() {
    var table = $("stats-table");
    setState($("table-state"), "loading", gettext("Loading…"));
    setState($("ranking-state"), "loading", gettext("Loading…"));
    $("kpis").classList.add("is-loading");
    table.classList.add("is-loading");
    var query = Object.assign({ level: state.level }, filterQuery());
    return latest("areas", withQuery(urls.areas, query)).then(function (body) {
      state.areas = body;
      $("kpis").classList.remove("is-loading");
      table.classList.remove("is-loading");
      renderKpis(body.totals);
      renderTable();
      renderRanking();
    }, function (error) {
      if (error.superseded) { return; }
      $("kpis").classList.remove("is-loading");
      setState($("table-state"), "error", error.message);
      setState($("ranking-state"), "error", error.message);
      showError(error);
    });
  }

  function renderKpis(totals) {
    var values = {
      events: M.formatNumber(totals.events),
      closed: M.formatNumber(totals.closed),
      open: M.formatNumber(totals.open),
      completion_rate: M.formatPercent(totals.completion_rate),
      residents: M.formatNumber(totals.residents),
      events_per_1000: M.formatNumber(totals.events_per_1000, 2),
      satisfaction: M.formatNumber(totals.satisfaction, 2)
    };
    Array.prototype.forEach.call(document.querySelectorAll("[data-kpi]"), function (node) {
      node.textContent = values[node.dataset.kpi];
    });
  }

  var COLUMNS = ["residents", "events", "open", "closed", "completion_rate", "events_per_1000", "satisfaction"];

  function cell(key, value) {
    if (key === "completion_rate") { return M.formatPercent(value); }
    if (key === "events_per_1000" || key === "satisfaction") { return M.formatNumber(value, 2); }
    return M.formatNumber(value);
  }

  function sortedAreas() {
    var key = state.sort.key;
    var dir = state.sort.dir;
    var value = function (area) {
      if (key === "name") { return area.name; }
      if (key === "parent") { return area.parent ? area.parent.name : ""; }
      return area[key];
    };
    return state.areas.areas.slice().sort(function (a, b) {
      var x = value(a), y = value(b);
      if (x === y) { return a.code < b.code ? -1 : 1; }
      if (x === null || x === undefined) { return 1; }  // no figure: always last
      if (y === null || y === undefined) { return -1; }
      if (typeof x === "string") { return dir * x.localeCompare(y, M.locale); }
      return dir * (x - y);
    });
  }

  function renderTable() {
    var body = state.areas;
    var table = $("stats-table");
    var tbody = table.tBodies[0];
    tbody.replaceChildren();
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("aria-sort", th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    });
    if (table.tFoot) { table.deleteTFoot(); }
    if (!body.areas.length) {
      setState($("table-state"), "empty", gettext("No area matches these filters."));
    } else {
      setState($("table-state"), null);
      sortedAreas().forEach(function (area) {
        // The row is clicked with a mouse; its name is a button, so the keyboard reaches it too.
        var row = el("tr", { dataset: { code: area.code }, title: gettext("Filter by this area"), onclick: function () { chooseArea(area); } },
          el("td", null, el("button", { type: "button", class: "an-row-pick", "aria-label": interpolate(gettext("Filter by %(area)s"), { area: area.name }, true) }, area.name)),
          el("td", null, area.parent ? area.parent.name : "—"));
        COLUMNS.forEach(function (key) { row.appendChild(el("td", { class: "num" }, cell(key, area[key]))); });
        tbody.appendChild(row);
      });
      var foot = table.createTFoot();
      var total = el("tr", null, el("td", null, gettext("Total")), el("td", null, ""));
      COLUMNS.forEach(function (key) { total.appendChild(el("td", { class: "num" }, cell(key, body.totals[key]))); });
      foot.appendChild(total);
    }
    $("table-note").textContent = body.events_outside_areas
      ? interpolate(gettext("%(count)s more events lie in no area (waiting for a location, or outside every grid)."), { count: M.formatNumber(body.events_outside_areas) }, true)
      : "";
  }

  /* At most ``limit`` characters per name, each still told from the others: a long name keeps
   * its start and its end ("畅家巷…1-2-3小网格": community and grid number), since the small
   * grids of a community differ only at the end. Names that still collide get more of the end. */
  var RANKING_LABEL_CHARS = 12;
  function shortNames(names, limit) {
    function cut(name, tail) {
      if (name.length <= limit) { return name; }
      var head = limit - 1 - tail;
      return name.slice(0, Math.max(0, head)) + "…" + name.slice(name.length - tail);
    }
    var tail = Math.ceil((limit - 1) / 2);
    var labels = names.map(function (name) { return cut(name, tail); });
    while (tail < limit - 1 && new Set(labels).size < new Set(names).size) {
      tail += 1;
      labels = names.map(function (name) { return cut(name, tail); });
    }
    return labels;
  }

  function renderRanking() {
    var areas = state.areas.areas.filter(function (a) { return a.events_per_1000 !== null; });
    var byRate = areas.length > 0;
    var key = byRate ? "events_per_1000" : "events";
    var top = (byRate ? areas : state.areas.areas).slice().sort(function (a, b) { return b[key] - a[key]; }).slice(0, 15).reverse();
    $("ranking-title").textContent = byRate ? gettext("Ranking: events per 1,000 residents") : gettext("Ranking: events");
    if (!top.length || !top.some(function (a) { return a[key] > 0; })) {
      setState($("ranking-state"), "empty", gettext("No events match these filters."));
      rankingChart.clear();
      return;
    }
    setState($("ranking-state"), null);
    rankingChart.setOption({
      animation: false,
      grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: function (items) {
        var area = top[items[0].dataIndex];
        return echarts.format.encodeHTML(area.name) + "<br>" + echarts.format.encodeHTML(items[0].seriesName) + ": " + M.formatNumber(area[key], 2);
      } },
      xAxis: { type: "value" },
      yAxis: { type: "category", data: shortNames(top.map(function (a) { return a.name; }), RANKING_LABEL_CHARS) },
      series: [{ type: "bar", name: byRate ? gettext("Per 1,000 residents") : gettext("Events"), data: top.map(function (a) { return a[key]; }), barMaxWidth: 28, itemStyle: { color: "#e6550d" } }]
    }, true);
  }

  function refreshSeries() {
    setState($("series-state"), "loading", gettext("Loading…"));
    var query = Object.assign({ interval: state.interval }, filterQuery());
    return latest("series", withQuery(urls.series, query)).then(function (body) {
      if (!body.buckets.length || !body.buckets.some(function (b) { return b.events > 0; })) {
        setState($("series-state"), "empty", gettext("No events match these filters."));
        seriesChart.clear();
        return;
      }
      setState($("series-state"), null);
      seriesChart.setOption({
        animation: false,
        grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
        legend: { top: 0 },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: body.buckets.map(function (b) { return b.start; }) },
        yAxis: [
          { type: "value", name: gettext("Events"), minInterval: 1 },
          { type: "value", name: gettext("Completion rate"), min: 0, max: 100, axisLabel: { formatter: "{value}%" }, splitLine: { show: false } }
        ],
        series: [
          { type: "bar", name: gettext("Closed"), stack: "events", data: body.buckets.map(function (b) { return b.closed; }), itemStyle: { color: "#2e86c1" } },
          { type: "bar", name: gettext("Open"), stack: "events", data: body.buckets.map(function (b) { return b.open; }), itemStyle: { color: "#f39c12" } },
          {
            type: "line", name: gettext("Completion rate"), yAxisIndex: 1, showSymbol: false, itemStyle: { color: "#1e7b3a" },
            data: body.buckets.map(function (b) { return b.completion_rate === null ? null : Math.round(b.completion_rate * 1000) / 10; })
          }
        ]
      }, true);
    }, function (error) {
      if (error.superseded) { return; }
      setState($("series-state"), "error", error.message);
      showError(error);
    });
  }

  Array.prototype.forEach.call($("stats-table").tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () {
      var key = th.dataset.sort;
      state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : (key === "name" || key === "parent" ? 1 : -1) };
      if (state.areas) { renderTable(); }
    });
  });

  /* --- start ------------------------------------------------------------------------------- */

  // For the browser tests and for an analyst's console: the preview map.
  window.MinqingAnalyst = { map: map };

  readLocation();
  fillChoices();
  markSegments();
  bindFilters();
  loadCatalog();
  loadStreets().then(loadCommunities).then(loadGrids).then(function () {
    writeLocation();
    refreshHighlight();
    refreshLinks();
    if (!datesInverted()) { refreshStatistics(); }
  }, function (error) {
    showError(error);
    setState($("table-state"), "error", error.message);
    setState($("series-state"), "error", error.message);
    setState($("ranking-state"), "error", error.message);
  });
})();
