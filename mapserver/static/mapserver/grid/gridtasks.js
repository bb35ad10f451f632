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
  function queued(taskId) {
    return G.state.queue.some(function (item) { return item.kind === "task" && item.task_id === taskId; });
  }

  function answer(task, resolution, proposal, text) {
    var id = G.uuid();
    return G.queuePut({
      client_id: id, user: G.username, kind: "task", task_id: task.id, created_at: new Date().toISOString(),
      url: G.urls.taskAnswer.replace("{id}", task.id), state: "pending", label: text,
      body: { client_id: id, resolution: resolution, proposal: proposal }
    }).then(function () {
      G.toast(gettext("Answer kept; it is sent when the network is there."));
      renderTasks();
      return G.sync();
    });
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
      card.appendChild(el("p", { class: "mq-muted" }, gettext("Answered; waiting for a data steward's approval.")));
      return card;
    }
    if (queued(task.id)) {
      card.appendChild(el("p", { class: "mq-muted" }, gettext("Answer waiting to be sent.")));
      return card;
    }
    var row = el("div", { class: "grid-actions" });
    if (task.kind === "stale") {
      row.appendChild(el("button", { type: "button", class: "grid-button grid-button-primary", onclick: function () {
        answer(task, "confirm", {}, gettext("Confirmed") + "：" + task.address.text);
      } }, gettext("Confirm: it is right")));
      row.appendChild(el("button", { type: "button", class: "grid-button", onclick: function () {
        card.appendChild(correctForm(task));
      } }, gettext("Correct")));
    } else {
      (task.candidates || []).forEach(function (candidate) {
        row.appendChild(el("button", { type: "button", class: "grid-button", onclick: function () {
          answer(task, "confirm", { address: candidate.code }, gettext("Confirmed") + "：" + candidate.text);
        } }, fmt(gettext("It is %(text)s"), { text: candidate.text })));
      });
    }
    card.appendChild(row);
    return card;
  }

  function correctForm(task) {
    var form = el("div", { class: "grid-form" });
    var text = el("input", { type: "text", id: "correct-text-" + task.id, value: task.address.text, maxlength: "300" });
    form.appendChild(el("label", { for: "correct-text-" + task.id }, gettext("The address as it should read")));
    form.appendChild(text);
    form.appendChild(el("button", { type: "button", class: "grid-button grid-button-primary", onclick: function () {
      answer(task, "correct", { fields: { full_text: text.value.trim() } }, gettext("Corrected") + "：" + text.value.trim());
    } }, gettext("Send the correction")));
    return form;
  }

  function renderTasks() {
    var tasks = (pkg && pkg.tasks) || [];
    $("tasks-count").textContent = "(" + tasks.length + ")";
    var fragment = document.createDocumentFragment();
    tasks.forEach(function (task) { fragment.appendChild(taskCard(task)); });
    if (!tasks.length) { fragment.appendChild(el("p", { class: "mq-empty" }, gettext("No addresses to check."))); }
    $("tasks-list").replaceChildren(fragment);
  }

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
