/* The data steward's import page (/imports/).
 *
 * Upload a file with its kind and options (POST /api/imports, multipart) → a dry run is queued
 * and run by the background worker; the page polls the job (GET /api/imports/<id>) and shows its
 * progress, then its counts, notes, topology problems, first rejected rows (the whole report as
 * CSV), and the map preview (GET …/preview.geojson). A dry run that read the file can be
 * committed (POST …/commit) with the rejected rows and topology problems the steward accepts.
 * The selected job is kept in the page's address (#job-<id>), so a reopened page finds it:
 * jobs run on the server whether or not the page stays open.
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var el = M.el;
  var config = M.config("imports-config");
  var kinds = {};
  config.kinds.forEach(function (entry) { kinds[entry.kind] = entry; });

  function $(id) { return document.getElementById(id); }
  function show(node, visible) { node.classList.toggle("mq-hidden", !visible); }

  var KIND_NAMES = {
    divisions: gettext("divisions"),
    boundaries: gettext("boundaries"),
    grids: gettext("grids"),
    addresses: gettext("addresses"),
    persons: gettext("residents"),
    units: gettext("units")
  };
  var ACTION_NAMES = { dry_run: gettext("Dry run"), commit: gettext("Commit") };
  var COUNT_NAMES = {
    rows: gettext("rows read"),
    created: gettext("to create"),
    updated: gettext("to update"),
    changed: gettext("boundaries changed"),
    unchanged: gettext("unchanged"),
    redrawn: gettext("grids redrawn"),
    relinked: gettext("registry rows relinked"),
    outside_grids: gettext("outside every grid"),
    rejected: gettext("rejected")
  };
  var COMMITTED_COUNT_NAMES = { created: gettext("created"), updated: gettext("updated") };

  /* What a job's state means to the steward. */
  function statusText(job) {
    if (job.status === "queued") { return gettext("Queued"); }
    if (job.status === "running") { return gettext("Running"); }
    if (job.status === "succeeded") {
      return job.action === "commit" ? gettext("Committed") : gettext("Dry run passed: ready to commit");
    }
    var kind = job.failure ? job.failure.kind : "";
    if (kind === "rejected") { return job.action === "commit" ? gettext("Not committed: too many rejected rows") : gettext("Rows rejected"); }
    if (kind === "topology") { return job.action === "commit" ? gettext("Not committed: topology problems") : gettext("Topology problems"); }
    if (kind === "interrupted") { return gettext("Interrupted"); }
    return gettext("Failed: nothing written");
  }

  function jobTitle(job) {
    return [ACTION_NAMES[job.action] || job.action, KIND_NAMES[job.kind] || job.kind, job.file.name].join(" · ");
  }

  /* --- the upload form ---------------------------------------------------------------------- */

  var kindSelect = $("u-kind");
  var fileInput = $("u-file");

  function showKind() {
    var entry = kinds[kindSelect.value];
    document.querySelectorAll(".im-options").forEach(function (fieldset) {
      var mine = fieldset.dataset.kind === entry.kind;
      show(fieldset, mine && entry.options.length > 0);
      fieldset.disabled = !mine;  // a disabled fieldset's fields are not sent
    });
    fileInput.setAttribute("accept", entry.formats.join(","));
    $("u-formats").textContent = interpolate(gettext("Accepted: %(formats)s, at most %(size)s MB."),
      { formats: entry.formats.join(" "), size: M.formatNumber(config.maxBytes / 1048576) }, true);
  }
  kindSelect.addEventListener("change", showKind);
  showKind();

  $("upload-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var body = new FormData(form);
    // Blank options are left to the importer's defaults.
    Array.from(body.keys()).forEach(function (key) {
      if (key !== "file" && body.get(key) === "") { body.delete(key); }
    });
    var button = $("u-submit");
    button.disabled = true;
    button.textContent = gettext("Uploading…");
    show($("upload-error"), false);
    M.fetchJSON(config.urls.jobs, { method: "POST", body: body, timeoutMs: 30 * 60 * 1000 }).then(function (job) {
      form.reset();
      showKind();
      selectJob(job.id);
      jobsPoller.poke();
    }, function (error) {
      $("upload-error").textContent = error.message;
      show($("upload-error"), true);
    }).then(function () {
      button.disabled = false;
      button.textContent = gettext("Upload and dry run");
    });
  });

  /* --- the job list ------------------------------------------------------------------------- */

  function renderJobs(body) {
    var list = $("jobs");
    $("jobs-state").textContent = body.results.length ? "" : gettext("No imports yet.");
    show($("jobs-state"), !body.results.length);
    list.replaceChildren.apply(list, body.results.map(function (job) {
      return el("li", { dataset: { id: job.id, status: job.status }, class: job.id === selected ? "is-selected" : "" },
        el("button", { type: "button" },
          el("span", { class: "im-job-name" }, jobTitle(job)),
          el("span", { class: "im-job-state", dataset: { status: job.status } }, statusText(job)),
          el("span", { class: "im-job-when" }, (job.created_by || "") + " · " + M.formatDateTime(job.created_at))));
    }));
  }

  $("jobs").addEventListener("click", function (event) {
    var item = event.target.closest("li[data-id]");
    if (item) { selectJob(Number(item.dataset.id)); }
  });

  var jobsPoller = new M.Poller(function () {
    return M.fetchJSON(config.urls.jobs).then(renderJobs);
  }, { intervalMs: 3000 }).start();

  /* --- one job ------------------------------------------------------------------------------ */

  var selected = null;
  var current = null;
  var previewShown = null;

  function jobUrl(id) { return config.urls.jobs + "/" + id; }

  function selectJob(id) {
    selected = id;
    current = null;
    if (window.location.hash !== "#job-" + id) { window.history.replaceState(null, "", "#job-" + id); }
    document.querySelectorAll("#jobs li").forEach(function (item) {
      item.classList.toggle("is-selected", Number(item.dataset.id) === id);
    });
    show($("job-empty"), false);
    show($("job"), true);
    $("job-title").textContent = gettext("Loading…");
    jobPoller.poke();
  }

  var jobPoller = new M.Poller(function () {
    if (selected === null) { return Promise.resolve(); }
    var id = selected;
    return M.fetchJSON(jobUrl(id)).then(function (job) {
      if (selected === id) { renderJob(job); }
    });
  }, { intervalMs: 1000 }).start();

  function renderJob(job) {
    var changed = !current || current.status !== job.status || current.commit !== job.commit;
    current = job;
    // The list polls less often: keep the selected job's line in step.
    var line = document.querySelector('#jobs li[data-id="' + job.id + '"] .im-job-state');
    if (line) {
      line.textContent = statusText(job);
      line.dataset.status = job.status;
    }
    $("job-title").textContent = jobTitle(job);
    var status = $("job-status");
    status.textContent = statusText(job);
    status.dataset.status = job.status;
    status.dataset.failure = job.failure ? job.failure.kind : "";
    $("job-meta").textContent = [
      interpolate(gettext("job %(id)s"), { id: job.id }, true),
      job.created_by,
      interpolate(gettext("created %(when)s"), { when: M.formatDateTime(job.created_at) }, true),
      job.finished_at ? interpolate(gettext("finished %(when)s"), { when: M.formatDateTime(job.finished_at) }, true) : "",
      job.dry_run ? interpolate(gettext("commit of the dry run %(id)s"), { id: job.dry_run }, true) : ""
    ].filter(Boolean).join(" · ");
    renderProgress(job);
    $("job-message").textContent = job.message || "";
    renderCounts(job);
    var notes = (job.summary && job.summary.notes) || [];
    $("job-notes").replaceChildren.apply($("job-notes"), notes.map(function (note) { return el("li", {}, note); }));
    renderTopology(job);
    renderRejections(job);
    if (changed) { renderCommit(job); }
    renderPreview(job);
  }

  function renderProgress(job) {
    var running = job.status === "running" || job.status === "queued";
    show($("job-progress"), running);
    if (!running) { return; }
    var progress = job.progress || {};
    var bar = $("job-progress-bar");
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.done || 0;
    } else {
      bar.removeAttribute("value");  // indeterminate
    }
    var text = job.status === "queued" ? gettext("Waiting for the import worker…")
      : interpolate(gettext("Stage: %(stage)s"), { stage: progress.stage || "…" }, true);
    if (progress.total) {
      text += " · " + M.formatNumber(progress.done) + " / " + M.formatNumber(progress.total);
    }
    $("job-progress-text").textContent = text;
  }

  function renderCounts(job) {
    var counts = job.counts || {};
    var names = job.action === "commit" && job.status === "succeeded" ? Object.assign({}, COUNT_NAMES, COMMITTED_COUNT_NAMES) : COUNT_NAMES;
    // In the order of COUNT_NAMES (the job's JSON does not keep the importer's order), others after.
    var order = Object.keys(COUNT_NAMES);
    var keys = Object.keys(counts).sort(function (a, b) {
      var i = order.indexOf(a), j = order.indexOf(b);
      return (i < 0 ? order.length : i) - (j < 0 ? order.length : j) || (a < b ? -1 : 1);
    });
    var rows = keys.map(function (key) {
      return el("tr", { dataset: { count: key } }, el("th", { scope: "row" }, names[key] || key), el("td", {}, M.formatNumber(counts[key])));
    });
    var body = $("job-counts").tBodies[0];
    body.replaceChildren.apply(body, rows);
  }

  function renderTopology(job) {
    var problems = (job.summary && job.summary.topology) || [];
    show($("job-topology"), problems.length > 0);
    $("job-problems").replaceChildren.apply($("job-problems"), problems.map(function (problem) {
      return el("li", { dataset: { kind: problem.kind } }, problem.describe);
    }));
  }

  function renderRejections(job) {
    var rejections = (job.summary && job.summary.rejections) || [];
    var rejected = (job.counts && job.counts.rejected) || 0;
    show($("job-rejections"), rejections.length > 0);
    var report = $("job-report");
    show(report, !!job.links.report);
    if (job.links.report) { report.setAttribute("href", job.links.report); }
    $("job-rejection-rows").replaceChildren.apply($("job-rejection-rows"), rejections.map(function (r) {
      return el("tr", {}, el("td", { class: "num" }, String(r.row)), el("td", {}, r.field), el("td", {}, r.value), el("td", {}, r.reason));
    }));
    $("job-rejection-more").textContent = rejected > rejections.length
      ? interpolate(gettext("The first %(shown)s of %(total)s rejected rows; the report lists them all."), { shown: rejections.length, total: M.formatNumber(rejected) }, true)
      : "";
  }

  /* A dry run that read its file may be committed once (again after a failed commit). */
  function renderCommit(job) {
    var form = $("commit-form");
    var failure = job.failure ? job.failure.kind : "";
    var committable = job.action === "dry_run" && job.status !== "queued" && job.status !== "running" &&
      (failure === "" || failure === "rejected" || failure === "topology") && !job.commit;
    show(form, committable);
    show($("commit-error"), false);
    if (job.commit) {
      var link = el("a", { href: "#job-" + job.commit, dataset: { job: job.commit } }, interpolate(gettext("See the commit (job %(id)s)."), { id: job.commit }, true));
      $("job-message").replaceChildren(job.message ? job.message + " " : "", link);
    }
    if (!committable) { return; }
    var rejected = (job.counts && job.counts.rejected) || 0;
    show($("commit-rejections"), rejected > 0);
    $("c-max-rejected").value = rejected > 0 ? String(rejected) : "0";
    var topology = ((job.summary && job.summary.topology_total) || 0) > 0;
    show($("commit-topology"), topology);
    $("c-accept-topology").checked = false;
    $("c-submit").disabled = false;
  }

  $("job-message").addEventListener("click", function (event) {
    var link = event.target.closest("a[data-job]");
    if (link) {
      event.preventDefault();
      selectJob(Number(link.dataset.job));
    }
  });

  $("commit-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) { return; }
    var button = $("c-submit");
    button.disabled = true;
    var body = { max_rejected: $("c-max-rejected").value.trim() || "0", accept_topology: $("c-accept-topology").checked };
    M.fetchJSON(current.links.commit, { method: "POST", body: body }).then(function (job) {
      selectJob(job.id);
      jobsPoller.poke();
    }, function (error) {
      $("commit-error").textContent = error.message;
      show($("commit-error"), true);
      button.disabled = false;
    });
  });

  window.addEventListener("hashchange", function () {
    var match = /^#job-(\d+)$/.exec(window.location.hash);
    if (match && Number(match[1]) !== selected) { selectJob(Number(match[1])); }
  });

  window.addEventListener("minqing:session-expired", function () {
    var node = $("upload-error");
    node.replaceChildren(gettext("Your session has expired."), " ",
      el("a", { href: "/accounts/login/?next=" + encodeURIComponent(window.location.pathname + window.location.hash) }, gettext("Log in again")));
    show(node, true);
  });

  /* --- the map preview ---------------------------------------------------------------------- */

  var map = L.map("preview-map", { zoomControl: true, attributionControl: true }).setView(config.center, config.zoom);
  if (config.basemap) {
    L.tileLayer(config.basemap.url, {
      attribution: config.basemap.attribution,
      minZoom: config.basemap.minzoom,
      maxZoom: config.basemap.maxzoom
    }).addTo(map);
  }
  var previewLayer = null;

  var STYLES = {
    grid: { color: "#1f4e79", weight: 1.2, fillColor: "#3c7dc4", fillOpacity: 0.12 },
    boundary: { color: "#1f4e79", weight: 1.5, fillColor: "#3c7dc4", fillOpacity: 0.08 },
    problem: { color: "#c0392b", weight: 2, fillColor: "#e74c3c", fillOpacity: 0.55 }
  };
  var POINT_COLOURS = { address: "#2e86de", unit: "#8e44ad", relinked: "#e67e22" };

  function popupText(properties) {
    if (properties.role === "problem") { return properties.describe; }
    if (properties.role === "relinked") {
      return interpolate(gettext("%(table)s moves from grid %(from)s to %(to)s"),
        { table: properties.table, from: properties.from || "—", to: properties.to || gettext("no grid") }, true);
    }
    return [properties.code || properties.credit_code, properties.name, properties.level].filter(Boolean).join(" · ");
  }

  function renderPreview(job) {
    var url = job.links.preview || null;
    if (url === previewShown) { return; }
    previewShown = url;
    if (previewLayer) {
      map.removeLayer(previewLayer);
      previewLayer = null;
    }
    $("map-note").textContent = url ? gettext("Loading…") : (job.action === "dry_run" && job.status !== "queued" && job.status !== "running" ? gettext("Nothing to show on the map for this import.") : "");
    if (!url) { return; }
    M.fetchJSON(url, { timeoutMs: 60000 }).then(function (collection) {
      if (previewShown !== url) { return; }
      previewLayer = L.geoJSON(collection, {
        // Leaflet applies this to the points' circle markers too: they keep their own colours.
        style: function (feature) { return feature.geometry.type === "Point" ? {} : (STYLES[feature.properties.role] || STYLES.grid); },
        pointToLayer: function (feature, latlng) {
          var colour = POINT_COLOURS[feature.properties.role] || "#2e86de";
          return L.circleMarker(latlng, { radius: feature.properties.role === "relinked" ? 6 : 4, color: "#ffffff", weight: 1, fillColor: colour, fillOpacity: 0.9 });
        },
        onEachFeature: function (feature, layer) { layer.bindPopup(popupText(feature.properties)); }
      }).addTo(map);
      var bounds = previewLayer.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20], maxZoom: 17 }); }
      $("map-note").textContent = interpolate(gettext("%(count)s features shown."), { count: M.formatNumber(collection.features.length) }, true);
      $("preview-map").dataset.features = String(collection.features.length);
    }, function (error) {
      $("map-note").textContent = error.message;
    });
  }

  var initial = /^#job-(\d+)$/.exec(window.location.hash);
  if (initial) { selectJob(Number(initial[1])); }

  window.MinqingImports = { map: map, selectJob: selectJob };
})();
