/* 小兰帮办: what the report page and the follow-up page share (loaded after common/minqing.js).
 *
 * window.Residents gives:
 *   config                 the page's json_script "resident-config"
 *   uuid()                 a random UUID (the page's id of a report or a photo: resends are stored once)
 *   api(url, options)      Minqing.fetchJSON with the follow-up token header when options.token is set
 *   upload(url, blob, options)  POST a raw image body (CSRF header, token header), resolving with the JSON
 *   statusText(code), stepText(step), levelText(code)   the case's codes in plain words
 *   saved.list(), saved.add(entry), saved.remove(ticket)  my reports kept on this phone (localStorage)
 * The follow-up token never goes into a URL the server sees: links carry it after "#".
 */
(function () {
  "use strict";

  var M = window.Minqing;
  var config = M.config("resident-config");
  var STORE = "minqing-resident-reports";

  function fmt(text, values) { return interpolate(text, values, true); }

  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function api(url, options) {
    options = Object.assign({}, options || {});
    if (options.token) {
      options.headers = Object.assign({}, options.headers || {});
      options.headers[config.tokenHeader] = options.token;
      delete options.token;
    }
    return M.fetchJSON(url, options);
  }

  /* A raw image body (the server checks what it is). Rejects with Minqing.HttpError like fetchJSON. */
  function upload(url, blob, options) {
    var headers = { Accept: "application/json", "X-CSRFToken": M.csrfToken(), "Content-Type": blob.type || "application/octet-stream" };
    headers[config.tokenHeader] = options.token;
    return fetch(url, { method: "POST", body: blob, headers: headers, credentials: "same-origin" }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch { body = null; }
        if (!response.ok) {
          var error = (body && body.error) || {};
          throw new M.HttpError(response.status, error.code || "http_" + response.status, error.message || response.statusText, body);
        }
        return body;
      });
    }, function () {
      throw new M.HttpError(0, "network", gettext("Network unavailable."), null);
    });
  }

  var STATUS = {
    received: gettext("Received"),
    triaged: gettext("Sorted, about to be sent on"),
    assigned: gettext("Sent to the staff in charge"),
    in_progress: gettext("Being handled"),
    resolved: gettext("Solved: waiting for your rating"),
    verified: gettext("Solved and checked"),
    closed: gettext("Closed"),
    returned: gettext("Being handled again"),
    suspended: gettext("Paused"),
    reopened: gettext("Reopened: being handled again")
  };
  var LEVEL = {
    community: gettext("community"),
    street: gettext("street"),
    district: gettext("district"),
    city: gettext("city")
  };

  function statusText(code) { return STATUS[code] || code; }
  function levelText(code) { return LEVEL[code] || code || ""; }

  function stepText(step) {
    switch (step.action) {
      case "receive": return gettext("Your report was received.");
      case "triage": return gettext("The dispatch center sorted it.");
      case "assign": return fmt(gettext("Sent to the staff in charge at %(level)s level."), { level: levelText(step.responsible_level) });
      case "accept":
      case "start": return gettext("A worker took it on.");
      case "resolve": return gettext("The staff reported it solved.");
      case "verify": return gettext("Another staff member checked the result.");
      case "close": return gettext("The case was closed.");
      case "return": return gettext("Sent back to be handled again.");
      case "suspend": return gettext("Paused while waiting for something outside the staff's hands.");
      case "resume": return gettext("Work resumed.");
      case "escalate": return fmt(gettext("Raised to the %(level)s level."), { level: levelText(step.responsible_level) });
      case "reopen": return gettext("You asked for it to be handled again.");
      case "rate": return fmt(gettext("You rated the result %(n)s of 5."), { n: step.satisfaction });
      default: return step.action;
    }
  }

  /* My reports kept on this phone: [{ticket, token, category, at}], newest first. */
  var saved = {
    list: function () {
      try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { return []; }
    },
    add: function (entry) {
      var items = saved.list().filter(function (item) { return item.ticket !== entry.ticket; });
      items.unshift(entry);
      try { localStorage.setItem(STORE, JSON.stringify(items.slice(0, 20))); } catch { /* private mode: the link on screen is enough */ }
    },
    remove: function (ticket) {
      var items = saved.list().filter(function (item) { return item.ticket !== ticket; });
      try { localStorage.setItem(STORE, JSON.stringify(items)); } catch { /* nothing kept */ }
    }
  };

  function followLink(token) { return config.urls.follow + "#" + token; }

  /* The list of my reports on this phone, into the node with id listId (its section shown when not empty). */
  function renderSaved(sectionId, listId) {
    var items = saved.list();
    var section = document.getElementById(sectionId);
    var list = document.getElementById(listId);
    section.classList.toggle("mq-hidden", !items.length);
    list.replaceChildren.apply(list, items.map(function (item) {
      var forget = M.el("button", { type: "button", class: "rs-button rs-small", "aria-label": fmt(gettext("Forget report %(ticket)s on this phone"), { ticket: item.ticket }) }, gettext("Forget"));
      forget.addEventListener("click", function () { saved.remove(item.ticket); renderSaved(sectionId, listId); });
      return M.el("li", null,
        M.el("a", { href: followLink(item.token) }, item.ticket),
        " ", M.el("span", { class: "mq-muted" }, (item.category || "") + " · " + M.formatDateTime(item.at)),
        " ", forget);
    }));
  }

  window.Residents = {
    config: config,
    fmt: fmt,
    uuid: uuid,
    api: api,
    upload: upload,
    statusText: statusText,
    stepText: stepText,
    levelText: levelText,
    saved: saved,
    followLink: followLink,
    renderSaved: renderSaved
  };
})();
