/* The building sheet (楼盘表) dialog, shared by every page that shows buildings: floors top first,
 * each row the floor's dwellings by entrance and room with occupancy and household size, care
 * tags where the answer carries them (only for roles that may see them), then the units and the
 * open cases. MinqingSheet.render(sheet, labels) builds the content; MinqingSheet.open(dialog,
 * sheet, labels, options) shows it in a <dialog>. */
(function () {
  "use strict";
  var M = window.Minqing;
  var el = M.el;
  function fmt(text, values) { return interpolate(text, values, true); }
  function name(labels, group, code) { return (labels && labels[group] && labels[group][code]) || code; }

  // A bare number is named ("Floor 3"); a floor already written out ("3层", "地下1层") is kept.
  function floorName(floor) { return /^-?\d+$/.test(floor || "") ? fmt(gettext("Floor %(floor)s"), { floor: floor }) : floor || "—"; }

  function render(sheet, labels) {
    var b = sheet.building;
    // Focusable: a wide matrix scrolls sideways, and a keyboard must reach it.
    var body = el("div", { class: "sheet", tabindex: "0", role: "region", "aria-label": gettext("Dwellings by floor") });
    body.appendChild(el("p", { class: "mq-muted" }, [b.address, b.compound].filter(Boolean).join(" · ")));
    var t = sheet.totals;
    body.appendChild(el("p", { class: "sheet-totals" }, fmt(
      gettext("%(dwellings)s dwellings, %(occupied)s occupied, %(vacant)s vacant, %(residents)s residents, %(cases)s open cases"),
      { dwellings: t.dwellings, occupied: t.occupied, vacant: t.vacant, residents: t.residents, cases: t.open_cases })));
    var table = el("table", { class: "sheet-matrix" });
    table.appendChild(el("caption", { class: "mq-visually-hidden" }, gettext("Dwellings by floor")));
    sheet.floors.forEach(function (floor) {
      var row = el("tr", null, el("th", { scope: "row" }, floorName(floor.floor)));
      floor.cells.forEach(function (cell) {
        var vacant = cell.occupancy === "vacant";
        var td = el("td", { class: "sheet-cell", dataset: { occupancy: cell.occupancy, code: cell.code } },
          el("b", null, (cell.entrance ? cell.entrance + "-" : "") + (cell.room || cell.code)),
          el("span", null, name(labels, "occupancy", cell.occupancy)),
          vacant ? null : el("span", null, fmt(gettext("%(n)s people"), { n: cell.household_size })));
        if (cell.care_tags && cell.care_tags.length) {
          td.appendChild(el("span", { class: "grid-tag" }, cell.care_tags.map(function (tag) { return name(labels, "care_tags", tag); }).join("、")));
        }
        if (cell.open_cases) { td.appendChild(el("span", { class: "sheet-case" }, fmt(gettext("%(n)s open"), { n: cell.open_cases }))); }
        row.appendChild(td);
      });
      table.appendChild(row);
    });
    body.appendChild(sheet.floors.length ? table : el("p", { class: "mq-empty" }, gettext("No dwellings recorded in this building.")));
    if (!sheet.care_visible) { body.appendChild(el("p", { class: "mq-muted" }, gettext("Care tags are not shown to your role."))); }
    body.appendChild(el("h3", null, gettext("Units")));
    body.appendChild(sheet.units.length ? el("ul", null, sheet.units.map(function (u) {
      return el("li", null, u.name + " · " + name(labels, "unit_kind", u.kind));
    }).reduce(function (ul, li) { ul.appendChild(li); return ul; }, document.createDocumentFragment())) : el("p", { class: "mq-empty" }, gettext("No units.")));
    body.appendChild(el("h3", null, gettext("Open cases")));
    body.appendChild(sheet.cases.length ? el("ul", null, sheet.cases.map(function (c) {
      return el("li", null, c.category_name + " · " + name(labels, "status", c.status) + (c.room ? " · " + c.room : ""));
    }).reduce(function (ul, li) { ul.appendChild(li); return ul; }, document.createDocumentFragment())) : el("p", { class: "mq-empty" }, gettext("No open cases.")));
    return body;
  }

  /* options.modal false: shown beside the page instead of over it (the wall keeps running). */
  function open(dialog, sheet, labels, options) {
    var b = sheet.building;
    dialog.querySelector("h2").textContent = fmt(gettext("Building sheet: %(name)s"), { name: b.name || b.code });
    dialog.querySelector("[id$='-body']").replaceChildren(render(sheet, labels));
    dialog.dataset.building = b.code;
    if (!dialog.open) {
      if (options && options.modal === false) { dialog.show(); } else { dialog.showModal(); }
    }
  }

  window.MinqingSheet = { render: render, open: open };
})();
