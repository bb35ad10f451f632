/* The public map (/public/ and /public/embed/): a month's cases per small grid (counts below the
 * threshold merged into their community or street by the server), totals, the streets' times,
 * the month's categories and the solved cases with their approved summaries.
 * Everything comes from /api/public/…; nothing here is personal. Data only through json_script.
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var el = M.el;
  var config = M.config("public-config");

  function $(id) { return document.getElementById(id); }
  function fmt(text, values) { return interpolate(text, values, true); }
  function count(value) { return value === null || value === undefined ? fmt(gettext("fewer than %(k)s"), { k: config.threshold }) : M.formatNumber(value); }
  function hours(value) { return value === null || value === undefined ? "—" : M.formatNumber(value, 1); }

  var COLOURS = ["#fee8c8", "#fdbb84", "#e34a33", "#b30000"];

  /* ---------------------------------------------------------------- the month */

  var select = $("month");
  config.months.forEach(function (month) { select.appendChild(el("option", { value: month }, month)); });
  var wanted = new URLSearchParams(window.location.search).get("month");
  if (wanted && config.months.indexOf(wanted) >= 0) { select.value = wanted; }
  select.addEventListener("change", function () {
    var url = new URL(window.location.href);
    url.searchParams.set("month", select.value);
    window.history.replaceState(null, "", url.pathname + url.search);
    loadMonth();
  });
  $("threshold-note").textContent = fmt(gettext("To protect privacy, no figure below %(k)s is shown: small grids with fewer cases are counted with their community or street, and no case is shown as a point."), { k: config.threshold });

  /* ---------------------------------------------------------------- the map */

  var map = L.map("public-map", { zoomControl: true, attributionControl: true, scrollWheelZoom: !config.embed });
  if (config.basemap) {
    L.tileLayer(config.basemap.url, {
      minZoom: config.basemap.minzoom, maxNativeZoom: config.basemap.maxzoom, maxZoom: 18, attribution: config.basemap.attribution
    }).addTo(map);
  }
  map.setView(config.center, config.zoom);
  var cells = L.geoJSON(null, {
    style: function (feature) {
      var p = feature.properties;
      return {
        color: p.kind === "grid" ? "#7f2704" : "#3f007d",
        weight: p.kind === "grid" ? 1 : 2,
        dashArray: p.kind === "grid" ? null : "6 4",
        fillColor: colour(p.cases),
        fillOpacity: p.kind === "grid" ? 0.7 : 0.25
      };
    },
    onEachFeature: function (feature, layer) {
      var p = feature.properties;
      var title = p.kind === "grid" ? p.name : fmt(gettext("%(name)s: grids with fewer than %(k)s cases each"), { name: p.name, k: config.threshold });
      layer.bindPopup(function () {
        return el("div", null, el("b", null, title), el("br"),
          fmt(gettext("%(cases)s cases: %(resolved)s resolved, %(open)s open"), { cases: p.cases, resolved: p.resolved, open: p.open }));
      });
      layer.bindTooltip(el("span", null, title + " · " + p.cases));
    }
  }).addTo(map);
  var scale = [config.threshold, config.threshold * 2, config.threshold * 4, config.threshold * 8];

  function colour(cases) {
    var i = 0;
    while (i < scale.length - 1 && cases >= scale[i + 1]) { i += 1; }
    return COLOURS[i];
  }

  /* ---------------------------------------------------------------- loading */

  function query() { return "?month=" + encodeURIComponent(select.value); }

  function loadMonth() {
    document.body.dataset.ready = "false";
    return Promise.all([
      M.fetchJSON(config.urls.month + query()).then(renderMonth),
      M.fetchJSON(config.urls.cells + query()).then(renderCells)
    ]).catch(function (error) {
      $("threshold-note").textContent = error.message;
    }).then(function () { document.body.dataset.ready = "true"; });
  }

  function renderMonth(body) {
    var totals = body.totals;
    $("total-cases").textContent = count(totals.cases);
    $("total-resolved").textContent = totals.resolved === null ? "—" : M.formatNumber(totals.resolved);
    $("total-completion").textContent = M.formatPercent(totals.completion_rate);
    $("total-ontime").textContent = M.formatPercent(totals.on_time_rate);
    $("total-satisfaction").textContent = totals.satisfaction === null ? "—" : M.formatNumber(totals.satisfaction, 2);
    var rows = body.streets.streets.map(function (s) {
      return el("tr", { dataset: { code: s.code } },
        el("th", { scope: "row" }, s.name),
        el("td", null, M.formatNumber(s.cases)),
        el("td", null, M.formatPercent(s.completion_rate)),
        el("td", null, hours(s.response_hours)),
        el("td", null, hours(s.resolution_hours)),
        el("td", null, s.satisfaction === null ? "—" : M.formatNumber(s.satisfaction, 2)));
    });
    if (!rows.length) { rows = [el("tr", null, el("td", { colspan: "6", class: "mq-empty" }, gettext("No street has enough cases this month to be shown.")))]; }
    var tbody = document.querySelector("#streets tbody");
    tbody.replaceChildren.apply(tbody, rows);
    var others = body.streets.others;
    $("streets-others").textContent = others ? fmt(gettext("Other streets together: %(n)s cases."), { n: count(others) }) : "";
    var categories = body.categories.categories;
    var most = categories.length ? categories[0].cases : 1;
    var items = categories.map(function (c) {
      var name = M.lang === "en" && c.name_en ? c.name_en : c.name;
      return el("li", { dataset: { code: c.code } },
        el("span", { class: "pb-bar-label" }, name),
        el("span", { class: "pb-bar", style: "width:" + Math.max(4, Math.round(100 * c.cases / most)) + "%" }),
        el("span", { class: "pb-bar-value" }, M.formatNumber(c.cases)));
    });
    if (body.categories.other !== 0) {
      items.push(el("li", { dataset: { code: "other" } }, el("span", { class: "pb-bar-label" }, gettext("Other")),
        el("span", { class: "pb-bar", style: "width:4%" }), el("span", { class: "pb-bar-value" }, count(body.categories.other))));
    }
    if (!items.length) { items = [el("li", { class: "mq-empty" }, gettext("No cases this month."))]; }
    $("categories").replaceChildren.apply($("categories"), items);
  }

  function renderCells(collection) {
    cells.clearLayers().addData(collection);
    var legend = scale.map(function (from, i) {
      return el("span", { class: "pb-swatch-item" }, el("span", { class: "pb-swatch", style: "background:" + COLOURS[i] }),
        i === scale.length - 1 ? fmt(gettext("%(from)s or more"), { from: from }) : fmt(gettext("%(from)s to %(to)s"), { from: from, to: scale[i + 1] - 1 }));
    });
    legend.push(el("span", { class: "pb-swatch-item" }, el("span", { class: "pb-swatch pb-swatch-merged" }), gettext("dashed: several small grids counted together")));
    $("map-legend").replaceChildren.apply($("map-legend"), legend);
    var remainder = collection.remainder;
    $("map-remainder").textContent = remainder.cases === 0 ? "" : fmt(gettext("Not on the map (too few to show, or not located): %(n)s cases."), { n: count(remainder.cases) });
    if (collection.features.length) {
      map.fitBounds(cells.getBounds(), { padding: [20, 20], maxZoom: 15 });
    }
  }

  /* ---------------------------------------------------------------- solved cases */

  var nextCases = null;

  function loadCases(url) {
    return M.fetchJSON(url).then(function (page) {
      var list = $("cases");
      if (!nextCases || url === config.urls.cases + "?limit=10") { list.replaceChildren(); }
      page.results.forEach(function (c) {
        var place = [c.street, c.community].filter(Boolean).join(" · ");
        list.appendChild(el("li", { id: "case-" + c.id, class: "pb-case" },
          el("h3", null, (M.lang === "en" && c.category.name_en ? c.category.name_en : c.category.name)),
          el("p", { class: "mq-muted" }, fmt(gettext("%(place)s · received %(month)s · solved %(day)s in %(days)s days"),
            { place: place || "—", month: c.received_month, day: c.resolved_on || "—", days: c.days_to_resolve === null ? "—" : M.formatNumber(c.days_to_resolve, 1) })),
          el("p", null, c.summary)));
      });
      if (!list.children.length) { list.appendChild(el("li", { class: "mq-empty" }, gettext("No solved case has been published yet."))); }
      nextCases = page.next;
      $("cases-more").classList.toggle("mq-hidden", !nextCases);
    });
  }
  $("cases-more").addEventListener("click", function () { if (nextCases) { loadCases(nextCases); } });

  if (!config.embed) {
    $("embed-code").value = '<iframe src="' + new URL(config.urls.page + "embed/", window.location.href).href +
      '" width="100%" height="720" title="' + gettext("What the city solves") + '" style="border:0"></iframe>';
  }

  Promise.all([loadMonth(), loadCases(config.urls.cases + "?limit=10")]).then(function () {
    document.body.dataset.ready = "true";
  });
  window.MinqingPublic = { map: map, cells: cells, reload: loadMonth };
})();
