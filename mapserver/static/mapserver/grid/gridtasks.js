/* The grid page's address checks (registry tasks), household visits (走访) and building sheets.
 * Everything is read from the grid package kept for offline use (grid.js sends "minqing:package");
 * answers and visits go into the same IndexedDB queue as reports, each with its client_id, and are
 * sent in order when the network is there (the server stores a resend once). */
(function () {
  "use strict";
  var G = window.MinqingGrid;
  var M = window.Minqing;
  var el = M.el;
  var pkg = null;
  var visitPoint = null;
  function $(id) { return document.getElementById(id); }
  function fmt(text, values) { return interpolate(text, values, true); }

  /* ------------------------------------------------------------ building sheets */
  var dialog = $("sheet-dialog");
  $("sheet-close").addEventListener("click", function () { dialog.close(); });
  window.addEventListener("minqing:sheet", function (e) {
    var sheet = pkg && pkg.sheets && pkg.sheets[e.detail];
    if (sheet) { window.MinqingSheet.open(dialog, sheet, pkg.labels); }
  });

  /* ------------------------------------------------------------ address checks */
  /* Each open task's card offers the answers its kind takes (the API's RESOLUTIONS): a stale
   * address is confirmed, its text corrected, its point moved or merged into the address to keep;
   * a report's address is one of the geocoder's candidates or is added as a new address. What the
   * worker types is kept in ``drafts`` (per task) so that a card drawn again keeps it; an answer
   * the server refused comes back into its form with the message next to the field it names. */
  var FIELD_LABELS = {
    road: gettext("Road"), door_number: gettext("Door number"), compound_name: gettext("Compound"),
    building_number: gettext("Building number"), entrance: gettext("Entrance"), floor: gettext("Floor"),
    room: gettext("Room"), full_text: gettext("Full address")
  };
  var REQUIRED_NEW = ["road", "full_text"];
  var NUDGE_M = 5;
  var drafts = {};             // task id → {mode, fields, point, into, errors}
  var marked = null;           // the task whose points the map shows
  var taskLayer = L.layerGroup().addTo(G.map);

  function taskItems(taskId) {
    return G.state.queue.filter(function (item) { return item.kind === "task" && item.task_id === taskId; });
  }

  /* Metres between two points (haversine on the mean Earth radius: metres apart, the API's
   * geography distance agrees to well under a metre). */
  function metres(a, b) {
    var rad = Math.PI / 180, dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function findTask(id) { return ((pkg && pkg.tasks) || []).find(function (t) { return t.id === id; }); }

  function draftOf(task) {
    if (!drafts[task.id]) { drafts[task.id] = { mode: null, fields: {}, point: null, into: "", errors: {} }; }
    return drafts[task.id];
  }

  /* The form a refused answer came from, and the field the server named. */
  function restoreFailed(task, item) {
    var d = draftOf(task);
    if (d.restored === item.client_id) { return d; }
    var body = item.body || {}, proposal = body.proposal || {};
    d.restored = item.client_id;
    d.mode = body.resolution === "correct" ? (proposal.location ? "move" : "correct") : body.resolution;
    d.fields = Object.assign({}, proposal.fields || {});
    d.point = proposal.location ? { lon: proposal.location.lon, lat: proposal.location.lat, source: proposal.location.source || "tap" } : null;
    d.into = proposal.into || "";
    var parameter = String(item.parameter || "").replace(/^proposal\./, "");
    var field = parameter.indexOf("fields.") === 0 ? parameter.slice(7) : parameter.split(".")[0];
    if (["location", "into"].indexOf(field) < 0 && !FIELD_LABELS[field]) { field = "form"; }
    d.errors = {};
    d.errors[field] = item.error;
    return d;
  }

  function answer(task, resolution, proposal, text) {
    var id = G.uuid();
    var failed = taskItems(task.id).filter(function (item) { return item.state === "failed"; });
    return Promise.all(failed.map(function (item) { return G.queueDelete(item.client_id); })).then(function () {
      return G.queuePut({
        client_id: id, user: G.username, kind: "task", task_id: task.id, created_at: new Date().toISOString(),
        url: G.urls.taskAnswer.replace("{id}", task.id), state: "pending", label: text,
        body: { client_id: id, resolution: resolution, proposal: proposal }
      });
    }).then(function () {
      delete drafts[task.id];
      if (marked === task.id) { showPoints(null); }
      G.toast(gettext("Answer kept; it is sent when the network is there."));
      renderTasks();
      return G.sync();
    });
  }

  function fieldError(d, taskId, field) {
    return el("p", { class: "grid-field-error", id: "task-" + taskId + "-" + field + "-error", role: "alert" }, d.errors[field] || "");
  }

  /* An input bound to the draft; aria-invalid and the message below it when it was refused. */
  function textField(task, d, field, required) {
    var id = "task-" + task.id + "-" + field;
    var input = el("input", { type: "text", id: id, maxlength: String((G.addressFields || {})[field] || 300),
      value: d.fields[field] || "", "aria-describedby": id + "-error", autocomplete: "off" });
    if (required) { input.setAttribute("aria-required", "true"); }
    if (d.errors[field]) { input.setAttribute("aria-invalid", "true"); }
    input.addEventListener("input", function () { d.fields[field] = input.value; });
    return el("div", { class: "grid-field", dataset: { field: field } },
      el("label", { for: id }, FIELD_LABELS[field] + (required ? " *" : "")), input, fieldError(d, task.id, field));
  }

  /* Where the point is and what happens to the move: at once (≤ the free distance, inside my
   * grid) or by a steward — the rule the API applies. */
  function moveVerdict(task, point) {
    var from = { lon: task.address.lon, lat: task.address.lat };
    var distance = metres(from, point);
    var inside = G.inGrid(point.lon, point.lat);
    var values = { distance: M.formatNumber(distance, distance < 10 ? 1 : 0), limit: M.formatNumber(G.limits.freeMoveM) };
    if (distance <= G.limits.freeMoveM && inside) {
      return { now: true, text: fmt(gettext("Moved %(distance)s m: applies at once (within %(limit)s m, in my grid)."), values) };
    }
    return { now: false, text: fmt(inside
      ? gettext("Moved %(distance)s m: a data steward approves it (more than %(limit)s m).")
      : gettext("Moved %(distance)s m, outside my grid: a data steward approves it."), values) };
  }

  function whereText(point) {
    if (!point) { return gettext("No place chosen yet."); }
    return fmt(gettext("%(lon)s, %(lat)s (%(source)s)"), { lon: point.lon.toFixed(6), lat: point.lat.toFixed(6),
      source: point.source === "gps" ? gettext("GPS") : gettext("on the map") }) +
      (G.inGrid(point.lon, point.lat) ? "" : " · " + gettext("outside my grid"));
  }

  /* The map shows the task's address (a ring) and the point being chosen (a marker to drag). */
  var markerIcon = L.divIcon({ className: "grid-move-marker", iconSize: [44, 44], iconAnchor: [22, 22] });
  function showPoints(task) {
    taskLayer.clearLayers();
    marked = task ? task.id : null;
    if (!task) { return; }
    var d = draftOf(task);
    var from = task.address ? [task.address.lat, task.address.lon] : null;
    if (from) { L.circleMarker(from, { radius: 10, color: "#6c3483", weight: 3, fill: false, interactive: false }).addTo(taskLayer); }
    var at = d.point ? [d.point.lat, d.point.lon] : null;
    if (!at) { return; }
    if (from) { L.polyline([from, at], { color: "#6c3483", weight: 2, dashArray: "6 4", interactive: false }).addTo(taskLayer); }
    var marker = L.marker(at, { draggable: true, icon: markerIcon, keyboard: true, title: gettext("Drag to the right place"),
      alt: gettext("The new point") }).addTo(taskLayer);
    marker.on("dragend", function () {
      var ll = marker.getLatLng();
      setPoint(task, { lon: ll.lng, lat: ll.lat, source: "tap" });
    });
  }

  function setPoint(task, point) {
    var d = draftOf(task);
    d.point = point;
    delete d.errors.location;
    showPoints(task);
    redrawCard(task);
  }

  function useGps(task, message) {
    if (!navigator.geolocation) { message.textContent = gettext("This device has no GPS."); return; }
    message.textContent = gettext("Finding your position…");
    navigator.geolocation.getCurrentPosition(function (position) {
      var accuracy = position.coords.accuracy;
      if (!(accuracy <= G.limits.gpsMaxAccuracyM)) {
        message.textContent = fmt(gettext("The GPS fix is only accurate to %(accuracy)s m (at most %(limit)s m is accepted)."),
          { accuracy: M.formatNumber(accuracy), limit: M.formatNumber(G.limits.gpsMaxAccuracyM) });
        return;
      }
      setPoint(task, { lon: position.coords.longitude, lat: position.coords.latitude, source: "gps" });
    }, function () { message.textContent = gettext("No GPS fix: tap the map instead."); },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  }

  function tapMap(task) {
    G.pickPoint(function (point) {
      setPoint(task, { lon: point.lon, lat: point.lat, source: "tap" });
      focusLater("task-" + task.id + "-where");
    }, gettext("Tap the map where the address is."));
  }

  /* The point's controls: GPS, a tap, the map (phones) and nudges by a few metres, so that a
   * keyboard can move it too. */
  function pointControls(task, d, withGps) {
    var message = el("p", { class: "grid-message", role: "status" });
    var row = el("div", { class: "grid-row" });
    if (withGps) { row.appendChild(el("button", { type: "button", class: "grid-button", dataset: { do: "gps" }, onclick: function () { useGps(task, message); } }, gettext("Use GPS"))); }
    row.appendChild(el("button", { type: "button", class: "grid-button", dataset: { do: "tap" }, onclick: function () { tapMap(task); } }, gettext("Tap the map")));
    if (G.isPhone() && d.point) {
      row.appendChild(el("button", { type: "button", class: "grid-button", dataset: { do: "show" }, onclick: function () {
        G.showTab("map");
        G.map.panTo([d.point.lat, d.point.lon]);
      } }, gettext("Drag it on the map")));
    }
    var nudges = null;
    if (d.point) {
      var steps = [["north", gettext("%(n)s m north"), "↑", 1, 0], ["south", gettext("%(n)s m south"), "↓", -1, 0],
                   ["west", gettext("%(n)s m west"), "←", 0, -1], ["east", gettext("%(n)s m east"), "→", 0, 1]];
      nudges = el("div", { class: "grid-nudges", role: "group", "aria-label": gettext("Move the point by a few metres") });
      steps.forEach(function (s) {
        var name = fmt(s[1], { n: NUDGE_M });
        nudges.appendChild(el("button", { type: "button", class: "grid-button", id: "task-" + task.id + "-nudge-" + s[0], title: name, "aria-label": name,
          onclick: function () {
            var dLat = s[3] * NUDGE_M / 111320, dLon = s[4] * NUDGE_M / (111320 * Math.cos(d.point.lat * Math.PI / 180));
            setPoint(task, { lon: d.point.lon + dLon, lat: d.point.lat + dLat, source: "tap" });
            focusLater("task-" + task.id + "-nudge-" + s[0]);
          } }, s[2]));
      });
    }
    return [row, nudges, message];
  }

  function focusLater(id) { setTimeout(function () { var node = $(id); if (node) { node.focus(); } }, 0); }

  function modeButton(task, mode, text) {
    return el("button", { type: "button", class: "grid-button", dataset: { mode: mode }, "aria-expanded": draftOf(task).mode === mode ? "true" : "false",
      onclick: function () {
        var d = draftOf(task);
        d.mode = d.mode === mode ? null : mode;
        d.errors = {};
        if (d.mode === "move" && !d.point) { d.point = { lon: task.address.lon, lat: task.address.lat, source: "tap" }; }
        if (d.mode === "add" && !d.fields.full_text && task.event) { d.fields.full_text = task.event.address_text || ""; }
        showPoints(d.mode === "move" || d.mode === "add" ? task : null);
        redrawCard(task);
        focusLater(d.mode ? "task-" + task.id + "-form" : null);
      } }, text);
  }

  function formShell(task, title, children) {
    var form = el("div", { class: "grid-form grid-task-form", id: "task-" + task.id + "-form", tabindex: "-1", role: "group", "aria-label": title });
    form.appendChild(el("h4", null, title));
    children.forEach(function (child) {
      if (Array.isArray(child)) { child.forEach(function (c) { if (c) { form.appendChild(c); } }); }
      else if (child) { form.appendChild(child); }
    });
    return form;
  }

  function correctForm(task, d) {
    if (d.fields.full_text === undefined) { d.fields.full_text = task.address.text; }
    return formShell(task, gettext("Correct the text"), [
      textField(task, d, "full_text", true),
      fieldError(d, task.id, "form"),
      el("button", { type: "button", class: "grid-button grid-button-primary", dataset: { do: "send" }, onclick: function () {
        var text = (d.fields.full_text || "").trim();
        if (!text) { d.errors = { full_text: gettext("Write the address as it should read.") }; redrawCard(task); focusLater("task-" + task.id + "-full_text"); return; }
        answer(task, "correct", { fields: { full_text: text } }, gettext("Corrected") + "：" + text);
      } }, gettext("Send the correction"))]);
  }

  function moveForm(task, d) {
    var verdict = d.point ? moveVerdict(task, d.point) : null;
    var where = el("p", { class: "grid-where", id: "task-" + task.id + "-where", tabindex: "-1", "aria-live": "polite",
      dataset: { approval: verdict ? (verdict.now ? "now" : "steward") : "" } },
      verdict ? verdict.text : gettext("Drag the marker or tap the map where the address really is."));
    return formShell(task, gettext("Move the point"), [
      el("p", { class: "mq-muted" }, gettext("Drag the marker on the map, tap the map or move it by a few metres.")),
      pointControls(task, d, true), where, fieldError(d, task.id, "location"), fieldError(d, task.id, "form"),
      el("button", { type: "button", class: "grid-button grid-button-primary", dataset: { do: "send" }, onclick: function () {
        if (!d.point || metres({ lon: task.address.lon, lat: task.address.lat }, d.point) < 0.5) {
          d.errors = { location: gettext("Move the point first: it is where it was.") };
          redrawCard(task);
          return;
        }
        var lon = Math.round(d.point.lon * 1e7) / 1e7, lat = Math.round(d.point.lat * 1e7) / 1e7;
        answer(task, "correct", { location: { lon: lon, lat: lat } }, gettext("Moved") + "：" + task.address.text + " · " + moveVerdict(task, d.point).text);
      } }, gettext("Send the move"))]);
  }

  /* The nearest addresses of my grid (from the package) to keep instead of this one. */
  function nearby(task, limit) {
    var from = { lon: task.address.lon, lat: task.address.lat };
    return ((pkg && pkg.addresses && pkg.addresses.features) || []).filter(function (f) {
      return f.properties.code !== task.address.code;
    }).map(function (f) {
      var c = f.geometry.coordinates;
      return { code: f.properties.code, text: f.properties.text, distance: metres(from, { lon: c[0], lat: c[1] }) };
    }).sort(function (a, b) { return a.distance - b.distance; }).slice(0, limit);
  }

  function mergeForm(task, d) {
    var name = "task-" + task.id + "-into";
    var list = el("div", { class: "grid-choices", role: "radiogroup", id: name, "aria-describedby": name + "-error",
      "aria-label": gettext("The address to keep") });
    nearby(task, 8).forEach(function (a, i) {
      var id = name + "-" + i;
      var input = el("input", { type: "radio", name: name, id: id, value: a.code });
      input.checked = d.into === a.code;
      input.addEventListener("change", function () { d.into = a.code; });
      list.appendChild(el("label", { class: "grid-choice", for: id }, input,
        el("span", null, a.text, el("small", { class: "mq-muted" }, " · " + fmt(gettext("%(n)s m away"), { n: M.formatNumber(a.distance, 0) })))));
    });
    if (!list.children.length) { list.appendChild(el("p", { class: "mq-empty" }, gettext("No other address in my grid."))); }
    return formShell(task, gettext("Merge duplicates"), [
      el("p", { class: "mq-muted" }, fmt(gettext("%(text)s is the same place as another address: choose the one to keep. This one is removed and its households, residents, units and reports move to the one kept. A data steward approves it."), { text: task.address.text })),
      list, fieldError(d, task.id, "into"), fieldError(d, task.id, "form"),
      el("button", { type: "button", class: "grid-button grid-button-primary", dataset: { do: "send" }, onclick: function () {
        if (!d.into) { d.errors = { into: gettext("Choose the address to keep.") }; redrawCard(task); focusLater(name + "-0"); return; }
        var kept = nearby(task, 50).find(function (a) { return a.code === d.into; });
        answer(task, "merge", { into: d.into }, gettext("Merge") + "：" + task.address.text + " → " + (kept ? kept.text : d.into));
      } }, gettext("Propose the merge"))]);
  }

  function addForm(task, d) {
    var where = el("p", { class: "grid-where", id: "task-" + task.id + "-where", tabindex: "-1", "aria-live": "polite" }, whereText(d.point));
    var fields = Object.keys(FIELD_LABELS).map(function (field) { return textField(task, d, field, REQUIRED_NEW.indexOf(field) >= 0); });
    return formShell(task, gettext("Add the missing address"), [
      el("p", { class: "mq-muted" }, gettext("A new standard address: a data steward approves it.")),
      fields, el("span", { class: "grid-label" }, gettext("Where")), pointControls(task, d, true), where,
      fieldError(d, task.id, "location"), fieldError(d, task.id, "form"),
      el("button", { type: "button", class: "grid-button grid-button-primary", dataset: { do: "send" }, onclick: function () {
        var errors = {}, given = {};
        Object.keys(FIELD_LABELS).forEach(function (field) {
          var value = (d.fields[field] || "").trim();
          if (value) { given[field] = value; }
          else if (REQUIRED_NEW.indexOf(field) >= 0) { errors[field] = fmt(gettext("%(field)s is required."), { field: FIELD_LABELS[field] }); }
        });
        if (!d.point) { errors.location = gettext("Choose the place: use GPS or tap the map."); }
        if (Object.keys(errors).length) {
          d.errors = errors;
          redrawCard(task);
          var first = REQUIRED_NEW.find(function (f) { return errors[f]; });
          focusLater(first ? "task-" + task.id + "-" + first : "task-" + task.id + "-where");
          return;
        }
        var location = { lon: Math.round(d.point.lon * 1e7) / 1e7, lat: Math.round(d.point.lat * 1e7) / 1e7 };
        answer(task, "add", { fields: given, location: location }, gettext("New address") + "：" + given.full_text);
      } }, gettext("Propose the new address"))]);
  }

  function taskCard(task) {
    var title = G.label("task_kind", task.kind);
    var card = el("article", { class: "grid-card grid-task", dataset: { task: task.id, kind: task.kind } },
      el("h3", null, title));
    if (task.event) {
      card.appendChild(el("p", null, fmt(gettext("Report %(id)s gave the address: %(text)s"), { id: task.event.id, text: task.event.address_text })));
    }
    if (task.address) { card.appendChild(el("p", null, task.address.text)); }
    if (task.status === "awaiting") {
      card.dataset.state = "awaiting";
      card.appendChild(el("p", { class: "mq-muted" }, gettext("Answered; waiting for a data steward's approval.")));
      return card;
    }
    var items = taskItems(task.id);
    var failed = items.find(function (item) { return item.state === "failed"; });
    if (items.length && !failed) {
      card.dataset.state = "queued";
      card.appendChild(el("p", { class: "mq-muted" }, gettext("Answer waiting to be sent.")));
      return card;
    }
    var d = failed ? restoreFailed(task, failed) : draftOf(task);
    if (failed) {
      card.dataset.state = "refused";
      card.appendChild(el("p", { class: "mq-error" }, gettext("Not accepted: correct the answer and send it again.")));
    }
    var row = el("div", { class: "grid-actions" });
    if (task.kind === "stale") {
      row.appendChild(el("button", { type: "button", class: "grid-button grid-button-primary", dataset: { do: "confirm" }, onclick: function () {
        answer(task, "confirm", {}, gettext("Confirmed") + "：" + task.address.text);
      } }, gettext("Confirm: it is right")));
      row.appendChild(modeButton(task, "correct", gettext("Correct the text")));
      row.appendChild(modeButton(task, "move", gettext("Move the point")));
      row.appendChild(modeButton(task, "merge", gettext("Merge duplicates")));
    } else {
      (task.candidates || []).forEach(function (candidate) {
        row.appendChild(el("button", { type: "button", class: "grid-button", dataset: { do: "candidate", code: candidate.code }, onclick: function () {
          answer(task, "confirm", { address: candidate.code }, gettext("Confirmed") + "：" + candidate.text);
        } }, fmt(gettext("It is %(text)s"), { text: candidate.text })));
      });
      row.appendChild(modeButton(task, "add", gettext("Add the missing address")));
    }
    card.appendChild(row);
    var forms = { correct: correctForm, move: moveForm, merge: mergeForm, add: addForm };
    if (d.mode && forms[d.mode]) { card.appendChild(forms[d.mode](task, d)); }
    return card;
  }

  /* What has the focus before a redraw, so that it can be given back: the element's id and, in a
   * text field, the caret and selection (a sync can redraw the list while someone types). */
  function focusNow() {
    var node = document.activeElement;
    if (!node || !node.id) { return null; }
    var text = node.tagName === "INPUT" && node.type === "text";
    return { id: node.id, start: text ? node.selectionStart : null, end: text ? node.selectionEnd : null };
  }

  function focusAgain(was) {
    var node = was && $(was.id);
    if (!node) { return; }
    node.focus();
    if (was.start !== null) { node.setSelectionRange(was.start, was.end); }
  }

  /* Draw one card again in place, keeping the focus where it was when that element is redrawn. */
  function redrawCard(task) {
    var old = document.querySelector(".grid-task[data-task='" + task.id + "']");
    if (!old) { renderTasks(); return; }
    var focused = focusNow();
    old.replaceWith(taskCard(task));
    focusAgain(focused);
  }

  function renderTasks() {
    var tasks = (pkg && pkg.tasks) || [];
    $("tasks-count").textContent = "(" + tasks.length + ")";
    var fragment = document.createDocumentFragment();
    tasks.forEach(function (task) { fragment.appendChild(taskCard(task)); });
    if (!tasks.length) { fragment.appendChild(el("p", { class: "mq-empty" }, gettext("No addresses to check."))); }
    var focused = focusNow();
    $("tasks-list").replaceChildren(fragment);
    focusAgain(focused);
    if (marked !== null && !findTask(marked)) { showPoints(null); }
  }

  /* A sent answer: the task is done (it leaves the list) or waits for a steward; the package's
   * copy on the tablet follows. */
  window.addEventListener("minqing:sent", function (e) {
    var item = e.detail.item, result = e.detail.answer;
    if (item.kind !== "task" || !pkg || !result) { return; }
    pkg.tasks = (pkg.tasks || []).filter(function (task) {
      if (task.id !== item.task_id) { return true; }
      task.status = result.status;
      return result.status === "awaiting";
    });
    delete drafts[item.task_id];
    G.savePackage();
    renderTasks();
  });
  window.addEventListener("minqing:queue", function () { if (pkg) { renderTasks(); } });

  /* ------------------------------------------------------------ visits */
  function fillHouseholds() {
    var select = $("visit-household");
    var options = [el("option", { value: "" }, gettext("Choose a household"))];
    ((pkg && pkg.households) || []).forEach(function (h) {
      options.push(el("option", { value: h.code }, (h.address || h.code)));
    });
    select.replaceChildren.apply(select, options);
  }

  function showVisitPoint(point) {
    visitPoint = point;
    $("visit-where").textContent = point ? fmt(gettext("%(lon)s, %(lat)s (%(source)s)"),
      { lon: point.lon.toFixed(5), lat: point.lat.toFixed(5), source: point.source === "gps" ? gettext("GPS") : gettext("on the map") })
      : gettext("No place chosen yet.");
  }

  $("visit-gps").addEventListener("click", function () {
    var message = $("visit-message");
    if (!navigator.geolocation) { message.textContent = gettext("This device has no GPS."); return; }
    message.textContent = gettext("Finding your position…");
    navigator.geolocation.getCurrentPosition(function (position) {
      var accuracy = position.coords.accuracy;
      if (!(accuracy <= G.limits.gpsMaxAccuracyM)) {
        showVisitPoint(null);
        message.textContent = fmt(gettext("The GPS fix is only accurate to %(accuracy)s m (at most %(limit)s m is accepted)."),
          { accuracy: M.formatNumber(accuracy), limit: M.formatNumber(G.limits.gpsMaxAccuracyM) });
        return;
      }
      message.textContent = "";
      showVisitPoint({ lon: position.coords.longitude, lat: position.coords.latitude, source: "gps", accuracy_m: accuracy });
    }, function () { message.textContent = gettext("No GPS fix: place the visit at the household instead."); },
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });

  /* The household's building on the map stands for the place (a tap: no accuracy claimed). */
  $("visit-here").addEventListener("click", function () {
    var code = $("visit-household").value;
    var household = ((pkg && pkg.households) || []).find(function (h) { return h.code === code; });
    var building = household && ((pkg.buildings && pkg.buildings.features) || []).find(function (f) { return f.properties.code === household.building; });
    if (!building) { $("visit-message").textContent = gettext("Choose a household first."); return; }
    var center = L.geoJSON(building).getBounds().getCenter();
    $("visit-message").textContent = "";
    showVisitPoint({ lon: center.lng, lat: center.lat, source: "tap" });
  });

  $("visit-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var message = $("visit-message");
    var notes = $("visit-notes").value.trim();
    var followUp = $("visit-follow-up").value.trim();
    if (!notes && !followUp) { message.textContent = gettext("Say what the visit found."); return; }
    if (!visitPoint) { message.textContent = gettext("Choose the place: use GPS or the household."); return; }
    var id = G.uuid();
    var location = { lon: visitPoint.lon, lat: visitPoint.lat, source: visitPoint.source };
    if (visitPoint.accuracy_m !== undefined) { location.accuracy_m = visitPoint.accuracy_m; }
    var household = $("visit-household").value;
    var body = { client_id: id, household: household, visited_at: new Date().toISOString(), location: location,
                 notes: notes, follow_up: followUp };
    G.queuePut({
      client_id: id, user: G.username, kind: "visit", created_at: new Date().toISOString(), url: G.urls.visits,
      state: "pending", label: gettext("Visit") + "：" + (household || "") + " " + notes.slice(0, 30), body: body
    }).then(function () {
      $("visit-form").reset();
      showVisitPoint(null);
      message.textContent = "";
      $("visits-list").prepend(el("div", { class: "grid-household grid-visit" }, el("b", null, household || gettext("Visit")), " ", notes));
      G.toast(gettext("Visit recorded; it is sent when the network is there."));
      return G.sync();
    });
  });

  window.addEventListener("minqing:package", function (e) {
    pkg = e.detail;
    renderTasks();
    fillHouseholds();
  });
})();
