/* 小兰帮办 /report/: a resident reports a problem from their phone (390×844 first), no account.
 *
 *  - the category in plain words: the family as big choices, then (optionally) the subtype;
 *  - up to config.limits.photos photos, each checked here for type and size before anything is sent;
 *  - the place by GPS (a fix vaguer than the limit is refused: tap or type instead), by a tap on the
 *    map, or by typing the address (geocoded as one types, showing the standard address matched);
 *    every place says at once which community and grid will handle it (/api/resident/place);
 *  - sending: the report gets a UUID made here when the form is first sent, kept until it is
 *    stored, so a retry after a lost answer (or a double tap) is stored once and gets the same
 *    ticket and link; then the photos, each with its own id, one after the other;
 *  - the answer: the ticket number and the private follow-up link (/report/follow/#<token>), kept
 *    on this phone (localStorage) so "my reports" lists it.
 * Data only through json_script; no inline script (CSP).
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var R = window.Residents;
  var el = M.el;
  var fmt = R.fmt;
  var config = R.config;
  var limits = config.limits;

  var state = {
    categories: [],
    family: null,
    photos: [],          // [{id, file, url}]
    place: null,         // {lon, lat, source, accuracy_m} or {source: "address", address, lon, lat}
    clientId: null,      // the UUID of the report being sent (kept until it is stored)
    sending: false,
    geocodeSeq: 0
  };

  function $(id) { return document.getElementById(id); }

  function message(text) { $("report-message").textContent = text || ""; }

  /* ---------------------------------------------------------------- the map */

  var map = L.map("report-map", { zoomControl: true, attributionControl: true });
  if (config.basemap) {
    L.tileLayer(config.basemap.url, {
      minZoom: config.basemap.minzoom, maxNativeZoom: config.basemap.maxzoom, maxZoom: 19, attribution: config.basemap.attribution
    }).addTo(map);
  }
  map.setView(config.center, config.zoom);
  var marker = null;
  var tapping = false;

  function showMarker(lat, lon) {
    if (marker) { marker.setLatLng([lat, lon]); } else {
      marker = L.circleMarker([lat, lon], { radius: 10, color: "#a4262c", weight: 3, fillColor: "#e74c3c", fillOpacity: 0.8 }).addTo(map);
    }
    map.setView([lat, lon], Math.max(map.getZoom(), 16));
  }

  map.on("click", function (e) {
    if (!tapping) { return; }
    setPlace({ lon: round(e.latlng.lng), lat: round(e.latlng.lat), source: "tap" });
  });

  function round(value) { return Math.round(value * 1e6) / 1e6; }

  /* ---------------------------------------------------------------- categories */

  function loadCategories() {
    return M.fetchJSON(config.urls.categories).then(function (body) {
      state.categories = body.results;
      var families = body.results.filter(function (c) { return c.code === c.family; });
      var box = $("family-choices");
      box.replaceChildren.apply(box, families.map(function (family) {
        var id = "family-" + family.code;
        var input = el("input", { type: "radio", name: "family", id: id, value: family.code, class: "rs-radio" });
        input.addEventListener("change", function () { chooseFamily(family.code); });
        return el("div", { class: "rs-family" }, input,
          el("label", { for: id }, el("span", { class: "rs-family-name" }, family.name),
            M.lang === "en" ? null : el("span", { class: "rs-family-en", lang: "en" }, family.name_en)));
      }));
    }, function (error) {
      $("family-choices").replaceChildren(el("p", { class: "mq-error" }, error.message));
    });
  }

  function chooseFamily(code) {
    state.family = code;
    var select = $("report-category");
    var subtypes = state.categories.filter(function (c) { return c.family === code && c.code !== code; });
    select.replaceChildren(el("option", { value: code }, gettext("Not sure / other")));
    subtypes.forEach(function (c) { select.appendChild(el("option", { value: c.code }, c.name)); });
    select.disabled = !subtypes.length;
  }

  /* ---------------------------------------------------------------- description and photos */

  function countDescription() {
    var used = $("report-description").value.length;
    $("description-count").textContent = fmt(gettext("%(used)s of %(max)s characters"), { used: used, max: limits.descriptionMax });
  }
  $("report-description").setAttribute("maxlength", limits.descriptionMax);
  $("report-description").addEventListener("input", countDescription);
  countDescription();

  function renderPhotos() {
    var list = $("photo-list");
    list.replaceChildren.apply(list, state.photos.map(function (photo, i) {
      var remove = el("button", { type: "button", class: "rs-button rs-small", "aria-label": fmt(gettext("Remove photo %(n)s"), { n: i + 1 }) }, gettext("Remove"));
      remove.addEventListener("click", function () {
        URL.revokeObjectURL(photo.url);
        state.photos.splice(i, 1);
        renderPhotos();
      });
      return el("div", { class: "rs-photo" }, el("img", { src: photo.url, alt: fmt(gettext("Photo %(n)s"), { n: i + 1 }) }), remove);
    }));
    $("photos-button").classList.toggle("mq-hidden", state.photos.length >= limits.photos);
  }

  $("report-photos").addEventListener("change", function (e) {
    var files = Array.prototype.slice.call(e.target.files || []);
    e.target.value = "";
    message("");
    files.forEach(function (file) {
      if (state.photos.length >= limits.photos) {
        message(fmt(gettext("At most %(n)s photos per report."), { n: limits.photos }));
        return;
      }
      if (["image/jpeg", "image/png", "image/webp"].indexOf(file.type) < 0) {
        message(fmt(gettext("Only JPEG, PNG or WebP photos can be sent (this file is %(type)s)."), { type: file.type || "?" }));
        return;
      }
      if (file.size > limits.photoMaxBytes) {
        message(fmt(gettext("The photo is %(size)s MB; at most %(limit)s MB can be sent. Take it again at a lower resolution."),
          { size: M.formatNumber(file.size / 1048576, 1), limit: M.formatNumber(limits.photoMaxBytes / 1048576) }));
        return;
      }
      state.photos.push({ id: R.uuid(), file: file, url: URL.createObjectURL(file) });
    });
    renderPhotos();
  });

  /* ---------------------------------------------------------------- the place */

  function placeText(where) {
    var parts = [where.street, where.community, where.grid].filter(Boolean).map(function (a) { return a.name; });
    return parts.join(" · ");
  }

  function setPlace(place) {
    state.place = place;
    message("");
    var node = $("report-place");
    if (!place) {
      node.dataset.state = "";
      node.textContent = gettext("No place chosen yet.");
      return;
    }
    if (place.lat !== undefined && place.lat !== null) { showMarker(place.lat, place.lon); }
    if (place.where) { describePlace(place.where); return; }
    if (place.lon === undefined || place.lon === null) {
      node.dataset.state = "unknown";
      node.textContent = gettext("The staff will locate this address by hand.");
      return;
    }
    node.dataset.state = "checking";
    node.textContent = gettext("Checking who handles this place…");
    M.fetchJSON(config.urls.place + "?lon=" + place.lon + "&lat=" + place.lat).then(function (where) {
      if (state.place !== place) { return; }
      place.where = where;
      describePlace(where);
    }, function (error) {
      if (state.place !== place) { return; }
      node.dataset.state = "unknown";
      node.textContent = error.message;
    });
  }

  function describePlace(where) {
    var node = $("report-place");
    if (where.inside && where.grid) {
      node.dataset.state = "inside";
      node.textContent = fmt(gettext("Handled by %(place)s."), { place: placeText(where) });
    } else if (where.community || where.street) {
      node.dataset.state = "outside";
      node.textContent = fmt(gettext("Handled by %(place)s (no grid covers this point; the community will assign it)."), { place: placeText(where) });
    } else {
      node.dataset.state = "outside";
      node.textContent = gettext("This place lies outside the city's grids; the command center will find who handles it.");
    }
  }

  $("place-gps").addEventListener("click", function () {
    tapping = false;
    if (!navigator.geolocation) {
      message(gettext("This phone gives no location. Tap the map or type the address."));
      return;
    }
    $("report-place").textContent = gettext("Finding your position…");
    navigator.geolocation.getCurrentPosition(function (position) {
      var accuracy = position.coords.accuracy;
      if (!(accuracy <= limits.gpsMaxAccuracyM)) {
        setPlace(null);
        message(fmt(gettext("Your location is only accurate to %(accuracy)s m (at most %(limit)s m). Tap the map or type the address instead."),
          { accuracy: M.formatNumber(accuracy), limit: M.formatNumber(limits.gpsMaxAccuracyM) }));
        return;
      }
      setPlace({ lon: round(position.coords.longitude), lat: round(position.coords.latitude), source: "gps", accuracy_m: Math.round(accuracy * 10) / 10 });
    }, function (error) {
      setPlace(null);
      message(fmt(gettext("No location (%(reason)s). Tap the map or type the address."), { reason: error.message || error.code }));
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });

  $("place-tap").addEventListener("click", function () {
    tapping = true;
    $("report-map").classList.add("rs-tapping");
    $("report-place").dataset.state = "";
    $("report-place").textContent = gettext("Tap the map where the problem is.");
    $("report-map").scrollIntoView({ block: "center" });
  });

  /* Typed address: geocoded as one types (debounced); the best match is chosen at once and the
   * others offered. Answers that come back after newer ones are dropped. */
  var typingTimer = null;
  $("report-address").addEventListener("input", function () {
    clearTimeout(typingTimer);
    var text = $("report-address").value.trim();
    tapping = false;
    if (text.length < 2) { $("address-results").replaceChildren(); return; }
    typingTimer = setTimeout(function () { geocode(text); }, 350);
  });

  function geocode(text) {
    var seq = ++state.geocodeSeq;
    M.fetchJSON(config.urls.geocode + "?q=" + encodeURIComponent(text)).then(function (answer) {
      if (seq !== state.geocodeSeq) { return; }
      var list = $("address-results");
      if (!answer.candidates.length || !answer.matched) {
        list.replaceChildren(el("li", { class: "mq-muted" }, gettext("No standard address matches yet; keep typing, or tap the map.")));
        setPlace({ source: "address", address: text });
        return;
      }
      list.replaceChildren.apply(list, answer.candidates.map(function (candidate, i) {
        var button = el("button", { type: "button", class: "rs-candidate", "aria-pressed": i === 0 ? "true" : "false" },
          el("span", null, candidate.text), el("span", { class: "mq-muted" }, " " + placeText(candidate)));
        button.addEventListener("click", function () {
          list.querySelectorAll(".rs-candidate").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
          button.setAttribute("aria-pressed", "true");
          chooseCandidate(candidate);
        });
        return el("li", null, button);
      }));
      chooseCandidate(answer.candidates[0]);
    }, function (error) {
      if (seq === state.geocodeSeq) { $("address-results").replaceChildren(el("li", { class: "mq-error" }, error.message)); }
    });
  }

  function chooseCandidate(candidate) {
    var where = { inside: !!candidate.grid, street: candidate.street, community: candidate.community, grid: candidate.grid };
    setPlace({ source: "address", address: candidate.text, lon: candidate.lon, lat: candidate.lat, where: where, matched: candidate.text });
    $("report-place").textContent = fmt(gettext("Matched the standard address %(address)s. %(who)s"),
      { address: candidate.text, who: $("report-place").textContent });
  }

  /* ---------------------------------------------------------------- sending */

  function reportBody() {
    var place = state.place;
    var body = {
      client_id: state.clientId,
      category: $("report-category").value || state.family,
      description: $("report-description").value.trim(),
      source: place.source
    };
    if (place.source === "address") {
      body.address = place.address;
    } else {
      body.location = { lon: place.lon, lat: place.lat };
      if (place.accuracy_m !== undefined) { body.location.accuracy_m = place.accuracy_m; }
    }
    var phone = $("report-phone").value.trim();
    if (phone) { body.phone = phone; }
    return body;
  }

  function check() {
    if (!state.family) { return gettext("Choose what kind of problem it is."); }
    if (!$("report-description").value.trim()) { return gettext("Describe the problem in a few words."); }
    if (!state.place) { return gettext("Say where it is: your location, a tap on the map, or the address."); }
    var phone = $("report-phone").value.trim();
    if (phone && !/^1[3-9][0-9]{9}$/.test(phone)) { return gettext("The mobile number has 11 digits and starts with 1."); }
    return "";
  }

  $("report-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (state.sending) { return; }
    var problem = check();
    if (problem) { message(problem); return; }
    message("");
    state.sending = true;
    state.clientId = state.clientId || R.uuid();
    var submit = $("report-submit");
    submit.disabled = true;
    submit.textContent = gettext("Sending…");
    M.fetchJSON(config.urls.reports, { method: "POST", body: reportBody(), timeoutMs: 20000 }).then(function (receipt) {
      R.saved.add({ ticket: receipt.ticket, token: receipt.token, category: receipt.case.category.name, at: receipt.case.received_at });
      showReceipt(receipt);
      return sendPhotos(receipt);
    }).catch(function (error) {
      message(error.status === 0
        ? gettext("The report could not be sent (no network). Press send again: it will be stored only once.")
        : error.message);
    }).then(function () {
      state.sending = false;
      submit.disabled = false;
      submit.textContent = gettext("Send the report");
    });
  });

  function sendPhotos(receipt) {
    var node = $("receipt-photos");
    var total = state.photos.length;
    if (!total) { return Promise.resolve(); }
    var done = 0;
    node.textContent = fmt(gettext("Sending photos: %(done)s of %(total)s…"), { done: 0, total: total });
    return state.photos.reduce(function (chain, photo) {
      return chain.then(function () {
        return R.upload(config.urls.photos + "?client_id=" + photo.id, photo.file, { token: receipt.token }).then(function () {
          done += 1;
          node.textContent = fmt(gettext("Sending photos: %(done)s of %(total)s…"), { done: done, total: total });
        });
      });
    }, Promise.resolve()).then(function () {
      node.textContent = fmt(ngettext("%(n)s photo sent.", "%(n)s photos sent.", total), { n: total });
    }, function (error) {
      node.textContent = fmt(gettext("Not every photo could be sent (%(reason)s); the report itself is stored."), { reason: error.message });
    });
  }

  function showReceipt(receipt) {
    var kase = receipt.case;
    var link = new URL(R.followLink(receipt.token), window.location.href).href;
    $("receipt-ticket").textContent = receipt.ticket;
    var where = placeText({ street: kase.place.street, community: kase.place.community, grid: kase.handler.grid });
    $("receipt-handler").textContent = kase.handler.department
      ? fmt(gettext("Handled by %(department)s with %(place)s."), { department: kase.handler.department, place: where || gettext("the staff in charge") })
      : gettext("The command center will find who handles it.");
    $("receipt-deadline").textContent = kase.deadline
      ? fmt(gettext("To be handled by %(deadline)s."), { deadline: M.formatDateTime(kase.deadline, { year: "numeric" }) })
      : "";
    var same = kase.same_problem_reports;
    $("receipt-same").classList.toggle("mq-hidden", !same);
    $("receipt-same").textContent = same ? fmt(ngettext("%(n)s other resident reported the same problem nearby; it is handled as one case.",
      "%(n)s other residents reported the same problem nearby; it is handled as one case.", same), { n: same }) : "";
    $("receipt-link").textContent = link;
    $("receipt-link").href = link;
    $("receipt-open").href = link;
    $("report-view").classList.add("mq-hidden");
    $("receipt-view").classList.remove("mq-hidden");
    $("receipt-view").focus();
    window.scrollTo(0, 0);
  }

  $("receipt-copy").addEventListener("click", function () {
    var link = $("receipt-link").href;
    var done = function () { $("receipt-copy").textContent = gettext("Copied"); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(link).then(done, function () { window.prompt(gettext("Copy the link"), link); });
    } else {
      window.prompt(gettext("Copy the link"), link);
    }
  });

  $("receipt-new").addEventListener("click", function () {
    state.clientId = null;
    state.photos.forEach(function (photo) { URL.revokeObjectURL(photo.url); });
    state.photos = [];
    renderPhotos();
    $("report-form").reset();
    state.family = null;
    $("report-category").replaceChildren();
    $("report-category").disabled = true;
    $("address-results").replaceChildren();
    setPlace(null);
    countDescription();
    $("receipt-view").classList.add("mq-hidden");
    $("report-view").classList.remove("mq-hidden");
    R.renderSaved("my-reports", "my-reports-list");
  });

  // A change to what was sent makes it another report (a new id); an unchanged resend keeps the id.
  ["report-description", "report-category", "report-phone", "report-address"].forEach(function (id) {
    $(id).addEventListener("change", function () { if (!state.sending) { state.clientId = null; } });
  });

  R.renderSaved("my-reports", "my-reports-list");
  loadCategories().then(function () { document.body.dataset.ready = "true"; });

  window.MinqingReport = { map: map, state: state };
})();
