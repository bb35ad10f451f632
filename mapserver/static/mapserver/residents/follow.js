/* 小兰帮办 /report/follow/#<token>: one case as the resident who reported it sees it.
 *
 * The token is read from the address's fragment (never sent to the server in a URL) and sent in
 * the X-Follow-Token header. Shown: the status and every step in plain words, the place, who
 * handles it (department, level, grid; a person only where the city allows), the deadline, the
 * resolution note and the handlers' photos (fetched with the token, shown as blob: images), and
 * the one answer the resident may give to a resolution: a rating 1–5 with a comment, or — rated
 * 1 or 2, within the window — a reopening. Without a token: the reports kept on this phone.
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var R = window.Residents;
  var el = M.el;
  var fmt = R.fmt;
  var config = R.config;

  function $(id) { return document.getElementById(id); }

  var token = decodeURIComponent((window.location.hash || "").replace(/^#/, "")).trim();
  var photoUrls = [];
  var shownPhotos = null;  // the photo ids on show, so that a re-render does not fetch them again

  function showError(text) {
    $("follow-loading").classList.add("mq-hidden");
    $("follow-error").textContent = text;
    $("follow-error").classList.remove("mq-hidden");
  }

  function areaText(place) {
    return [place.street, place.community, place.grid].filter(Boolean).map(function (a) { return a.name; }).join(" · ");
  }

  function load() {
    if (!token) {
      $("follow-loading").classList.add("mq-hidden");
      R.renderSaved("my-reports", "my-reports-list");
      if (!R.saved.list().length) { showError(gettext("Open the follow-up link you received when you reported (it ends with # and a code).")); }
      document.body.dataset.ready = "true";
      return Promise.resolve();
    }
    return R.api(config.urls.case, { token: token }).then(render, function (error) {
      showError(error.status === 404 ? gettext("This follow-up link opens no report. Check that it was copied whole.") : error.message);
    }).then(function () { document.body.dataset.ready = "true"; });
  }

  function render(kase) {
    $("follow-loading").classList.add("mq-hidden");
    $("case").classList.remove("mq-hidden");
    $("case").dataset.status = kase.status;
    $("case-ticket").textContent = kase.ticket;
    $("case-category").textContent = kase.category.name;
    $("case-status").textContent = R.statusText(kase.status);
    $("case-status").dataset.status = kase.status;
    var place = areaText(kase.place);
    if (kase.place.address) { place = kase.place.address + (place ? " (" + place + ")" : ""); }
    $("case-place").textContent = place || (kase.place.located ? "—" : gettext("Being located by the staff"));
    var handler = kase.handler;
    var who = [];
    if (handler.department) { who.push(M.lang === "en" && handler.department_en ? handler.department_en : handler.department); }
    if (handler.responsible_level) { who.push(fmt(gettext("%(level)s level"), { level: R.levelText(handler.responsible_level) })); }
    if (handler.grid) { who.push(fmt(gettext("grid %(name)s"), { name: handler.grid.name })); }
    if (handler.person) { who.push(fmt(gettext("grid worker %(name)s"), { name: handler.person })); }
    $("case-handler").textContent = who.length ? who.join(" · ") : gettext("Not yet assigned");
    $("case-deadline").textContent = kase.deadline
      ? M.formatDateTime(kase.deadline, { year: "numeric" }) + (kase.overdue ? " " + gettext("(overdue: it has been raised to the next level)") : "")
      : "—";
    var same = kase.same_problem_reports;
    $("case-same").classList.toggle("mq-hidden", !same);
    $("case-same").textContent = same ? fmt(ngettext("%(n)s other resident reported the same problem nearby; it is handled as one case.",
      "%(n)s other residents reported the same problem nearby; it is handled as one case.", same), { n: same }) : "";
    renderSteps(kase.steps);
    renderResolution(kase.resolution);
    renderAnswer(kase);
  }

  function renderSteps(steps) {
    var list = $("case-steps");
    list.replaceChildren.apply(list, steps.slice().reverse().map(function (step) {
      return el("li", { dataset: { action: step.action } },
        el("time", { datetime: step.at }, M.formatDateTime(step.at)), " ", R.stepText(step));
    }));
  }

  function renderResolution(resolution) {
    $("case-resolution").classList.toggle("mq-hidden", !resolution);
    var ids = resolution ? resolution.photos.join(",") : "";
    if (ids === shownPhotos && resolution) {
      $("resolution-note").textContent = resolution.note || gettext("The staff left no note.");
      return;  // the same photos: keep the images already fetched
    }
    shownPhotos = ids;
    photoUrls.forEach(function (url) { URL.revokeObjectURL(url); });
    photoUrls = [];
    if (!resolution) { return; }
    $("resolution-at").textContent = resolution.at ? fmt(gettext("Solved on %(at)s"), { at: M.formatDateTime(resolution.at, { year: "numeric" }) }) : "";
    $("resolution-note").textContent = resolution.note || gettext("The staff left no note.");
    var box = $("resolution-photos");
    box.replaceChildren();
    resolution.photos.forEach(function (id, i) {
      fetch(config.urls.photo.replace("{id}", id), { headers: (function () { var h = {}; h[config.tokenHeader] = token; return h; })(), credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.blob() : null; })
        .then(function (blob) {
          if (!blob) { return; }
          var url = URL.createObjectURL(blob);
          photoUrls.push(url);
          box.appendChild(el("img", { src: url, alt: fmt(gettext("Photo of the result %(n)s"), { n: i + 1 }) }));
        });
    });
  }

  function renderAnswer(kase) {
    var answer = kase.answer;
    var open = answer.may_rate || answer.may_reopen;
    $("case-answer").classList.toggle("mq-hidden", !open);
    var done = $("case-answered");
    if (answer.answered) {
      done.classList.remove("mq-hidden");
      done.textContent = answer.answer === "reopen"
        ? gettext("You asked for the case to be handled again. You can rate the next result here.")
        : fmt(gettext("Thank you: you rated the result %(n)s of 5."), { n: answer.satisfaction });
    } else {
      done.classList.add("mq-hidden");
    }
    if (!open) { return; }
    var stars = $("answer-stars");
    if (!stars.children.length) {
      [1, 2, 3, 4, 5].forEach(function (n) {
        var id = "answer-star-" + n;
        var input = el("input", { type: "radio", name: "satisfaction", id: id, value: String(n), class: "rs-radio" });
        input.addEventListener("change", function () { updateReopen(answer); });
        stars.appendChild(el("div", { class: "rs-star" }, input, el("label", { for: id }, String(n))));
      });
    }
    $("answer-comment").setAttribute("maxlength", config.limits.commentMax);
    $("reopen-until").textContent = answer.reopen_until
      ? fmt(gettext("You can ask for this until %(at)s."), { at: M.formatDateTime(answer.reopen_until, { year: "numeric" }) })
      : "";
    updateReopen(answer);
  }

  function chosen() {
    var input = document.querySelector("input[name=satisfaction]:checked");
    return input ? Number(input.value) : null;
  }

  function updateReopen(answer) {
    var score = chosen();
    var offer = answer.may_reopen && score !== null && score <= 2;
    $("reopen-box").classList.toggle("mq-hidden", !offer);
    if (!offer) { $("answer-reopen").checked = false; }
    $("answer-submit").textContent = $("answer-reopen").checked ? gettext("Ask to handle it again") : gettext("Send my rating");
  }
  $("answer-reopen").addEventListener("change", function () {
    $("answer-submit").textContent = $("answer-reopen").checked ? gettext("Ask to handle it again") : gettext("Send my rating");
  });

  $("answer-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var score = chosen();
    var message = $("answer-message");
    if (score === null) { message.textContent = gettext("Choose from 1 to 5."); return; }
    message.textContent = "";
    var submit = $("answer-submit");
    submit.disabled = true;
    var body = { action: $("answer-reopen").checked ? "reopen" : "rate", satisfaction: score };
    var comment = $("answer-comment").value.trim();
    if (comment) { body.comment = comment; }
    R.api(config.urls.answer, { method: "POST", body: body, token: token }).then(function (kase) {
      render(kase);
    }, function (error) {
      message.textContent = error.message;
    }).then(function () { submit.disabled = false; });
  });

  window.addEventListener("hashchange", function () { window.location.reload(); });
  load();
  window.MinqingFollow = { reload: load };
})();
