// Live updates for the Damba dashboard.
//
// A live page contains an element #live whose data attributes name the URL of
// its live part (data-live-url) and the stream id of the newest event that
// the server took into account (data-after). This script follows the event
// stream from that id and adds each event to the events table, if the page
// has one. When an event concerns the page, it re-fetches the live part, at
// most about once a second however fast events come.
(function () {
  "use strict";

  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.fetch) {
    return;
  }

  var STREAM_URL = "/api/v1/events/stream";
  // Milliseconds between two fetches of the live part, at least.
  var REFRESH_GAP = 1000;
  // Milliseconds before a new connection once the browser has given up,
  // for example after a 503 from a busy server.
  var RECONNECT_DELAY = 5000;
  var ROUTE_ID = /^r[0-9a-f]{12}$/;
  var SESSION_ID = /^s[0-9a-f]{16}$/;

  var status = document.getElementById("live-status");
  var eventsBody = document.getElementById("events-body");
  var maxRows = eventsBody ? Number(eventsBody.dataset.max || 20) : 0;
  var watchRid = live.dataset.rid || "";
  var watchSid = live.dataset.sid || "";
  var lastId = live.dataset.after || "";
  var source = null;
  var timer = null;
  var fetching = false;
  var lastRefresh = 0;

  function showStatus(state, text) {
    if (!status) {
      return;
    }
    status.hidden = false;
    status.dataset.state = state;
    status.textContent = text;
  }

  // Tell whether an event may change what the live part shows. Every event
  // changes the overview, whose event count includes rejected actions.
  function concerns(event) {
    if (!watchSid && !watchRid) {
      return true;
    }
    if (event.result !== "ok") {
      return false;
    }
    if (event.event === "delroute" || event.event === "deluser") {
      return true;
    }
    return watchSid ? event.sid === watchSid : event.rid === watchRid;
  }

  function scheduleRefresh() {
    if (timer !== null) {
      return;
    }
    var wait = Math.max(100, REFRESH_GAP - (Date.now() - lastRefresh));
    timer = window.setTimeout(refresh, wait);
  }

  function refresh() {
    timer = null;
    if (fetching) {
      scheduleRefresh();
      return;
    }
    fetching = true;
    lastRefresh = Date.now();
    fetch(live.dataset.liveUrl, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (reply) {
        return reply.text();
      })
      .then(function (html) {
        // The server renders and escapes this HTML, and the page's
        // Content-Security-Policy would block any inline script in it.
        live.innerHTML = html;
        live.dataset.refreshed = String(Number(live.dataset.refreshed || 0) + 1);
      })
      .catch(function () {
        showStatus("retrying", "update failed");
      })
      .then(function () {
        fetching = false;
      });
  }

  function cell(row, text) {
    var td = document.createElement("td");
    if (text instanceof Node) {
      td.appendChild(text);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function link(href, text) {
    var a = document.createElement("a");
    a.className = "id";
    a.href = href;
    a.textContent = text;
    return a;
  }

  function stepLabel(step) {
    if (step === null || step === undefined) {
      return "";
    }
    if (step === 0) {
      return "START";
    }
    return step === 999 ? "ended" : String(step);
  }

  // Events wait here until the next paint, and only the newest maxRows of
  // them become rows, so a busy stream costs the page little.
  var pending = [];
  var painting = false;

  function queueRow(event) {
    if (!eventsBody) {
      return;
    }
    pending.push(event);
    if (pending.length > maxRows) {
      pending.splice(0, pending.length - maxRows);
    }
    if (!painting) {
      painting = true;
      window.requestAnimationFrame(function () {
        painting = false;
        var batch = pending;
        pending = [];
        batch.forEach(addRow);
      });
    }
  }

  function addRow(event) {
    var row = document.createElement("tr");
    row.className = "fresh result-" + event.result;
    row.dataset.id = event.id;

    var time = document.createElement("time");
    time.dateTime = event.dt;
    time.textContent = event.dt.slice(11, 19);
    cell(row, time);

    var kind = cell(row, "");
    var badge = document.createElement("span");
    badge.className = "badge ev-" + event.event;
    badge.textContent = event.event;
    kind.appendChild(badge);
    if (event.code) {
      var code = document.createElement("span");
      code.className = "code";
      code.textContent = " " + event.code;
      kind.appendChild(code);
    }

    cell(row, stepLabel(event.step));
    cell(row, event.what).className = "what";
    cell(row, ROUTE_ID.test(event.rid) ? link("/routes/" + event.rid, event.rid) : event.rid);
    cell(row, SESSION_ID.test(event.sid) ? link("/sessions/" + event.sid, event.sid) : event.sid);

    eventsBody.insertBefore(row, eventsBody.firstChild);
    while (eventsBody.rows.length > maxRows) {
      eventsBody.deleteRow(eventsBody.rows.length - 1);
    }
  }

  function connect() {
    source = new EventSource(STREAM_URL + "?after=" + encodeURIComponent(lastId));
    source.onopen = function () {
      showStatus("live", "live");
    };
    source.onmessage = function (message) {
      var event = JSON.parse(message.data);
      lastId = message.lastEventId || lastId;
      queueRow(event);
      if (concerns(event)) {
        scheduleRefresh();
      }
    };
    source.addEventListener("stream-error", function (message) {
      showStatus("retrying", JSON.parse(message.data).desc);
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up, so connect again later from the last id seen.
        source.close();
        showStatus("retrying", "reconnecting");
        window.setTimeout(connect, RECONNECT_DELAY);
      } else {
        showStatus("retrying", "reconnecting");
      }
    };
  }

  connect();
})();
