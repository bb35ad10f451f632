/* Minqing Map: helpers shared by every page (loaded by pages/base.html after the JS catalog).
 *
 * window.Minqing gives:
 *   config(id)            the JSON a template wrote with {{ value|json_script:"id" }}
 *   (translations: call the globals gettext("…") and interpolate(gettext("%(n)s …"), {n: 1}, true)
 *    of Django's JavaScriptCatalog directly, so that makemessages extracts the msgids)
 *   lang, locale          the page language ("zh-hans" | "en") and the matching Intl locale
 *   fetchJSON(url, opts)  fetch with CSRF header, timeout and our JSON error body → Minqing.HttpError
 *                         (a FormData body is sent as multipart, for uploads)
 *   Poller                run an async task every N ms, never overlapping, backing off on errors
 *   el(tag, attrs, ...children)  build DOM without innerHTML (text is always text)
 *   formatNumber, formatPercent, formatDateTime
 * No inline script anywhere (strict CSP script-src 'self'); pages pass data through json_script.
 */
(function () {
  "use strict";

  var configCache = {};
  var lang = document.documentElement.lang || "zh-hans";
  var locale = lang.indexOf("zh") === 0 ? "zh-CN" : "en-GB";

  /* The JS catalog (/jsi18n/) is loaded first by pages/base.html; this keeps a page working
   * (in English msgids) if it failed to load. */
  if (typeof window.gettext !== "function") {
    window.gettext = function (msgid) { return msgid; };
    window.interpolate = function (fmt, values) {
      return fmt.replace(/%\((\w+)\)s/g, function (_, key) { return String(values[key]); });
    };
  }

  function config(id) {
    if (!(id in configCache)) {
      var node = document.getElementById(id);
      if (!node) {
        throw new Error("Minqing.config: no json_script element with id " + id);
      }
      configCache[id] = JSON.parse(node.textContent);
    }
    return configCache[id];
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* An HTTP answer that is not 2xx, or no answer at all (status 0: network lost, timeout). */
  function HttpError(status, code, message, body) {
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.message = message;
    this.body = body;
  }
  HttpError.prototype = Object.create(Error.prototype);
  HttpError.prototype.constructor = HttpError;

  /* fetchJSON(url, {method, body (object → JSON; a FormData as it is), headers, timeoutMs (default 10000), signal}).
   * Resolves with the parsed JSON (null for 204); rejects with HttpError. A 401/403 also fires
   * a "minqing:session-expired" / "minqing:forbidden" event on window so a page can say so. */
  function fetchJSON(url, options) {
    options = options || {};
    var controller = new AbortController();
    var timeoutMs = options.timeoutMs || 10000;
    var timer = setTimeout(function () { controller.abort(); }, timeoutMs);
    if (options.signal) {
      if (options.signal.aborted) { controller.abort(); }
      options.signal.addEventListener("abort", function () { controller.abort(); }, { once: true });
    }
    var method = (options.method || "GET").toUpperCase();
    var headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    var init = { method: method, headers: headers, credentials: "same-origin", signal: controller.signal };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRFToken"] = csrfToken();
      if (options.body instanceof FormData) {
        init.body = options.body;  // multipart: the browser writes the Content-Type with its boundary
      } else if (options.body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(options.body);
      }
    }
    return fetch(url, init).then(function (response) {
      clearTimeout(timer);
      if (response.status === 204) { return null; }
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch { body = null; }
        if (!response.ok) {
          var error = (body && body.error) || {};
          if (response.status === 401) { window.dispatchEvent(new CustomEvent("minqing:session-expired")); }
          if (response.status === 403) { window.dispatchEvent(new CustomEvent("minqing:forbidden")); }
          throw new HttpError(response.status, error.code || "http_" + response.status,
                              error.message || response.statusText, body);
        }
        return body;
      });
    }, function (reason) {
      clearTimeout(timer);
      var aborted = reason && reason.name === "AbortError";
      throw new HttpError(0, aborted ? "timeout" : "network", aborted ? gettext("The server did not answer in time.") : gettext("Network unavailable."), null);
    });
  }

  /* new Poller(task, {intervalMs, maxIntervalMs, onState}).start()
   * Calls task() (returning a promise) every intervalMs, never two at once. After a failure the
   * wait doubles up to maxIntervalMs; onState({ok, error, failures, lastSuccess}) reports each
   * round so a page can show a stale indicator. stop() clears every timer (pages that run for
   * hours must not pile them up). Pauses while the tab is hidden unless keepWhenHidden. */
  function Poller(task, options) {
    options = options || {};
    this.task = task;
    this.intervalMs = options.intervalMs || 2000;
    this.maxIntervalMs = options.maxIntervalMs || 30000;
    this.onState = options.onState || function () {};
    this.keepWhenHidden = !!options.keepWhenHidden;
    this.failures = 0;
    this.lastSuccess = null;
    this.timer = null;
    this.running = false;
    this.inFlight = false;
    this.pending = false;
    this._onVisibility = this._onVisibility.bind(this);
  }
  Poller.prototype.start = function () {
    if (this.running) { return this; }
    this.running = true;
    document.addEventListener("visibilitychange", this._onVisibility);
    this._schedule(0);
    return this;
  };
  Poller.prototype.stop = function () {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    document.removeEventListener("visibilitychange", this._onVisibility);
    return this;
  };
  /* Run now (e.g. after the user changed a filter), without waiting for the next tick; while a
   * round is in flight, run again as soon as it ends (its answer may be for the old filter). */
  Poller.prototype.poke = function () {
    if (!this.running) { return; }
    if (this.inFlight) { this.pending = true; } else { this._schedule(0); }
  };
  Poller.prototype._onVisibility = function () {
    if (!document.hidden && this.running && !this.inFlight) { this._schedule(0); }
  };
  Poller.prototype._schedule = function (delay) {
    clearTimeout(this.timer);
    var self = this;
    this.timer = setTimeout(function () { self._run(); }, delay);
  };
  Poller.prototype._run = function () {
    var self = this;
    this.timer = null;
    if (!this.running) { return; }
    if (document.hidden && !this.keepWhenHidden) { return; }
    this.inFlight = true;
    Promise.resolve().then(function () { return self.task(); }).then(function () {
      self.failures = 0;
      self.lastSuccess = new Date();
      self.onState({ ok: true, error: null, failures: 0, lastSuccess: self.lastSuccess });
    }, function (error) {
      self.failures += 1;
      self.onState({ ok: false, error: error, failures: self.failures, lastSuccess: self.lastSuccess });
    }).then(function () {
      self.inFlight = false;
      if (!self.running) { return; }
      if (self.pending) {
        self.pending = false;
        self._schedule(0);
        return;
      }
      var wait = self.failures ? Math.min(self.intervalMs * Math.pow(2, self.failures), self.maxIntervalMs) : self.intervalMs;
      self._schedule(wait);
    });
  };

  /* el("li", {class: "x", dataset: {id: 3}, onclick: fn}, "text", childNode) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    var key;
    attrs = attrs || {};
    for (key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] === null || attrs[key] === undefined) { continue; }
      var value = attrs[key];
      if (key === "class") { node.className = value; }
      else if (key === "dataset") { Object.assign(node.dataset, value); }
      else if (key === "text") { node.textContent = value; }
      else if (key.indexOf("on") === 0 && typeof value === "function") { node.addEventListener(key.slice(2), value); }
      else { node.setAttribute(key, value); }
    }
    for (var i = 2; i < arguments.length; i += 1) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) { continue; }
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function formatNumber(value, digits) {
    if (value === null || value === undefined || isNaN(value)) { return "—"; }
    return new Intl.NumberFormat(locale, { maximumFractionDigits: digits || 0 }).format(value);
  }

  /* 0.934 → "93.4%"; null (no cases to rate) → "—". */
  function formatPercent(ratio, digits) {
    if (ratio === null || ratio === undefined || isNaN(ratio)) { return "—"; }
    return new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: digits === undefined ? 1 : digits, maximumFractionDigits: digits === undefined ? 1 : digits }).format(ratio);
  }

  function formatDateTime(value, options) {
    if (!value) { return "—"; }
    var date = value instanceof Date ? value : new Date(value);
    return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }, options || {})).format(date);
  }

  /* Leaflet.VectorGrid 1.3.0 calls L.DomEvent.fakeStop, which Leaflet 1.8+ dropped: clicking an
   * interactive vector tile feature would throw. Restore it as Leaflet 1.7 had it. */
  if (window.L && window.L.DomEvent && !window.L.DomEvent.fakeStop) {
    window.L.DomEvent.fakeStop = function (e) { e._stopped = true; };
  }

  window.Minqing = {
    config: config,
    lang: lang,
    locale: locale,
    csrfToken: csrfToken,
    HttpError: HttpError,
    fetchJSON: fetchJSON,
    Poller: Poller,
    el: el,
    formatNumber: formatNumber,
    formatPercent: formatPercent,
    formatDateTime: formatDateTime
  };
})();
