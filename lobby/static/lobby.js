// The lobby screen: polls /api/status every second and redraws. Text only ever goes in
// through textContent, so nothing from the server is ever parsed as HTML.
(function () {
  "use strict";
  var POLL_MS = 1000, TIMEOUT_MS = 1500, FAILURES_BEFORE_NOTICE = 2;
  var failures = 0, lastOk = null, last = null, skewMs = 0;  // the clock follows the server's

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function show(id, on) { $(id).hidden = !on; }
  function hhmm(date, tz) {
    try {
      return new Intl.DateTimeFormat("id-ID", {hour: "2-digit", minute: "2-digit", hour12: false, timeZone: tz})
        .format(date).replace(".", ":");
    } catch (e) { return date.toTimeString().slice(0, 5); }
  }

  function renderServices(s) {
    var box = $("services");
    box.replaceChildren();
    s.services.forEach(function (svc) {
      var card = el("article", "service state-" + svc.state);
      card.dataset.code = svc.code;
      card.dataset.state = svc.state;
      card.appendChild(el("h2", "name", svc.code + " · " + svc.name));
      card.appendChild(el("p", "status", svc.text_id));
      if (s.second_language) { card.appendChild(el("p", "en", svc.text_en)); }
      box.appendChild(card);
    });
  }

  function renderBanner(s) {
    var o = s.outage;
    show("banner", !!o);
    if (!o) { return; }
    $("banner-text").textContent = o.text_id;
    $("banner-valid").textContent = o.tickets_valid_id;
    $("banner-en").textContent = o.text_en + " " + o.tickets_valid_en;
    show("banner-en", !!s.second_language);
  }

  function renderKiosk(s) {
    var k = s.kiosk;  // the ticket machine not running or hung: no ticket can be taken
    show("kiosk-down", !!(k && k.down));
    if (!k || !k.down) { return; }
    $("kiosk-down-text").textContent = k.text_id;
    $("kiosk-down-valid").textContent = k.tickets_valid_id;
    $("kiosk-down-en").textContent = k.text_en + " " + k.tickets_valid_en;
    show("kiosk-down-en", !!s.second_language);
  }

  function renderAnnouncement(s) {
    var a = s.announcement;
    show("announcement", !!a);
    if (!a) { return; }
    $("announcement").className = "announcement severity-" + a.severity;
    $("announcement-text").textContent = a.text;
    $("announcement-until").textContent = a.until_time ? "Sampai " + a.until_time : "";
  }

  function renderOffices(s) {
    var list = $("offices-list");
    list.replaceChildren();
    s.nearest_offices.forEach(function (o) {
      var li = el("li", null, o.name);
      if (o.address) { li.appendChild(el("span", "address", " — " + o.address)); }
      list.appendChild(li);
    });
    show("offices", s.nearest_offices.length > 0);
    document.querySelectorAll("[data-en]").forEach(function (e) { e.hidden = !s.second_language; });
  }

  function renderStale(s, unreachable) {
    var text = null;
    if (unreachable) {
      text = "Layar tidak terhubung ke server" + (lastOk ? " sejak " + hhmm(new Date(lastOk.getTime() + skewMs), tz()) : "") +
        ". Informasi di bawah mungkin tidak terkini.";
    } else if (s && s.stale) {
      text = s.data_as_of_time ? "Data jaringan tidak terkini: terakhir diperbarui " + s.data_as_of_time + "."
                               : "Data jaringan belum tersedia.";
    }
    $("stale").textContent = text || "";
    show("stale", !!text);
  }

  function tz() { return last ? last.timezone : undefined; }

  function render(s) {
    last = s;
    skewMs = Date.parse(s.now) - Date.now();
    $("office").textContent = s.office.name;
    $("date").textContent = s.date;
    renderServices(s);
    renderKiosk(s);
    renderBanner(s);
    renderAnnouncement(s);
    renderOffices(s);
    renderStale(s, false);
  }

  function tick() { $("clock").textContent = hhmm(new Date(Date.now() + skewMs), tz()); }

  function poll() {
    var ctrl = new AbortController();
    var timer = setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS);
    fetch("/api/status", {cache: "no-store", signal: ctrl.signal})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (s) { failures = 0; lastOk = new Date(); render(s); })
      .catch(function () {
        failures += 1;
        if (failures >= FAILURES_BEFORE_NOTICE) { renderStale(last, true); }
      })
      .then(function () { clearTimeout(timer); tick(); setTimeout(poll, POLL_MS); });
  }

  render(JSON.parse($("initial-status").textContent));
  lastOk = new Date();
  tick();
  setTimeout(poll, POLL_MS);
})();
