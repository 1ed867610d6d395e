// sortcore status page: renders the snapshot pushed on /api/events.
// Labels are user data: text goes in with textContent only, never innerHTML.
"use strict";
(function () {
  var TOKEN_KEY = "sortcore.token";
  var STATUS_FIELDS = [
    ["runtime", "runtime"], ["frames", "frames"], ["socks", "socks"], ["dead_letters", "dead letters"],
    ["broker", "broker"], ["pending", "unsent"], ["denied", "refused"], ["errors", "errors"],
    ["camera", "camera"], ["since", "since"], ["updated_at", "updated"]
  ];
  var previous = {};   // design -> socks seen, to mark rows that just changed
  var source = null;
  var retry = 1000;
  var canReset = false;
  var canName = false;
  var naming = null;   // the design being named (its row's image)
  var cameraFailedAt = 0;
  var pushed = false;  // once the stream delivered, the first-paint fetch must not undo it
  var last = null;     // the latest snapshot, drawn again when the link goes up or down
  var linkUp = false;
  var lostAt = null;   // when the link went down (ms)
  var cameraSeen = false;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function clock(ts) {
    if (typeof ts !== "number") return "–";
    return new Date(ts * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
  }

  function day(ts) {
    if (typeof ts !== "number") return "–";
    var d = new Date(ts * 1000);
    return d.toLocaleDateString([], {month: "short", day: "numeric"}) + " " + clock(ts);
  }

  function design(name) { return name === "Unknown" ? "unrecognised" : name; }

  function renderRows(s) {
    var rows = s.rows || [];
    var seen = {};
    var body = $("pairs").tBodies[0];
    body.replaceChildren.apply(body, rows.map(function (r) {
      var tr = el("tr", null, {"data-image": r.image});
      tr.appendChild(picture(r.image, (s.thumbs || {})[r.image]));
      var th = el("th", r.image, {scope: "row"});
      if (r.taught === false) {  // a design found in this session: the person can name it
        th.appendChild(el("span", "new", {"class": "badge"}));
        if (canName) {
          var b = el("button", "Name", {type: "button", "class": "name", "data-name": r.image});
          b.addEventListener("click", function () { openDesign(r.image); });
          th.appendChild(b);
        }
      }
      tr.appendChild(th);
      tr.appendChild(el("td", r.number_socks_seen, {"data-field": "number_socks_seen"}));
      tr.appendChild(el("td", r.pair_seen, {"data-field": "pair_seen"}));
      tr.appendChild(el("td", r.pairs, {"data-field": "pairs"}));
      if (r.pair_seen !== "Pair") tr.classList.add("odd");
      if (r.taught === false) tr.classList.add("new");
      if (previous[r.image] !== undefined && previous[r.image] !== r.number_socks_seen) tr.classList.add("fresh");
      seen[r.image] = r.number_socks_seen;
      return tr;
    }));
    previous = seen;
    $("no-rows").hidden = rows.length > 0;
    $("total-pairs").textContent = rows.reduce(function (n, r) { return n + (r.pairs || 0); }, 0);
    $("total-socks").textContent = rows.reduce(function (n, r) { return n + (r.number_socks_seen || 0); }, 0)
      + (s.unknown || 0);
  }

  // The design's last picture from the camera; the URL changes with it, so it is cached.
  function picture(image, version) {
    var td = el("td", null, {"class": "pic"});
    if (typeof version === "number") {
      td.appendChild(el("img", null, {alt: "", width: "40", height: "40", "data-thumb": image,
        src: "/api/thumb?design=" + encodeURIComponent(image) + "&v=" + version}));
    }
    return td;
  }

  function renderOdd(s) {
    var odd = s.odd || [];
    $("odd").replaceChildren.apply($("odd"), odd.map(function (name) { return el("li", name, {"data-image": name}); }));
    $("no-odd").hidden = odd.length > 0;
    $("unknown").textContent = s.unknown || 0;
    $("waiting").textContent = s.waiting || 0;
  }

  function renderSightings(s) {
    var list = s.sightings || [];
    $("sightings").replaceChildren.apply($("sightings"), list.map(function (x) {
      var li = el("li", null, {"data-sighting": x.sighting});
      li.appendChild(el("time", clock(x.confirmed_at)));
      li.appendChild(el("span", design(x.image), {"class": x.image === "Unknown" ? "design unknown" : "design"}));
      if (x.camera) li.appendChild(el("span", x.camera, {"class": "muted"}));
      return li;
    }));
    $("no-sightings").hidden = list.length > 0;
  }

  // The service's state as the status message says it (online, degraded, offline), or
  // "unreachable" when the page lost the service without it saying it stopped.
  function serviceState(st) {
    var state = st.status || "starting";
    var reason = st.reason || "";
    if (state === "offline") {
      reason = "stopped at " + clock(st.updated_at) + (reason ? ": " + reason : "");
    } else if (!linkUp && lostAt !== null) {
      state = "unreachable";
      reason = "no answer from the service since " + clock(lostAt / 1000);
    }
    return [state, reason];
  }

  function renderStatus(s) {
    var st = s.status || {};
    var shown = serviceState(st);
    $("state").textContent = shown[0];
    $("state").className = "state " + shown[0];
    $("reason").textContent = shown[1];
    $("reason").hidden = !shown[1];
    $("status").replaceChildren.apply($("status"), STATUS_FIELDS.filter(function (f) {
      return st[f[0]] !== undefined && st[f[0]] !== null;
    }).reduce(function (nodes, f) {
      var value = f[0] === "updated_at" || f[0] === "since" ? day(st[f[0]]) : st[f[0]];
      return nodes.concat([el("dt", f[1]), el("dd", value, {"data-status": f[0]})]);
    }, []));
  }

  // Live frames only while the service runs, the link is up and the card is open: a stopped
  // service or a lost link shows a line saying so, never a frozen last frame.
  function renderCamera(s) {
    var st = s.status || {};
    var img = $("camera-img");
    var off = st.status === "offline" ? "The camera stopped with the service."
      : !linkUp ? "No connection to the service: the camera view is paused." : "";
    var live = !off && !!(st.camera && s.stream);
    cameraSeen = cameraSeen || live;
    $("camera").hidden = !(live || (off && cameraSeen));
    $("camera-off").textContent = off;
    $("camera-off").hidden = !off;
    img.hidden = !live;
    if (!live || !$("camera").open) { img.removeAttribute("src"); return; }
    if (!img.getAttribute("src") && Date.now() - cameraFailedAt > 5000) img.src = "/stream.mjpg";
  }

  function render(s) {
    last = s;
    canName = !!s.can_name;
    $("session").textContent = s.session === null || s.session === undefined ? "–" : s.session;
    $("started").textContent = day(s.started_at);
    renderRows(s);
    renderOdd(s);
    renderSightings(s);
    renderStatus(s);
    renderCamera(s);
    canReset = !!s.can_reset;
    $("reset").disabled = !canReset;
    $("reset-off").hidden = canReset;
  }

  function setLink(up) {
    if (up !== linkUp) lostAt = up ? null : Date.now();
    linkUp = up;
    $("link").textContent = up ? "live" : "reconnecting…";
    $("link").className = up ? "link up" : "link down";
    if (last) { renderStatus(last); renderCamera(last); }
  }

  function connect() {
    source = new EventSource("/api/events");
    source.addEventListener("snapshot", function (e) {
      retry = 1000;
      pushed = true;
      setLink(true);
      render(JSON.parse(e.data));
    });
    source.onerror = function () {
      setLink(false);
      if (source.readyState === EventSource.CLOSED) {  // the browser gave up: we do not
        source.close();
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 10000);
      }
    };
  }

  function showResetForm(show) {
    var known = !!sessionStorage.getItem(TOKEN_KEY);
    $("reset-form").hidden = !show;
    $("reset").hidden = show;
    $("token-label").hidden = known;
    if (show && !known) $("token").focus();
  }

  function sendReset(e) {
    e.preventDefault();
    var token = sessionStorage.getItem(TOKEN_KEY) || $("token").value.trim();
    if (!token) { $("reset-msg").textContent = "Enter the token first."; return; }
    $("reset-confirm").disabled = true;
    fetch("/api/reset", {method: "POST", headers: {"Authorization": "Bearer " + token}})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) { return [r.status, body]; });
      })
      .then(function (res) {
        var status = res[0], body = res[1];
        if (status === 200) {
          sessionStorage.setItem(TOKEN_KEY, token);
          $("token").value = "";
          showResetForm(false);
          $("reset-msg").textContent = "Session " + body.session + " started.";
        } else {
          if (status === 401) { sessionStorage.removeItem(TOKEN_KEY); showResetForm(true); }
          $("reset-msg").textContent = status === 401 ? "Wrong token: not reset." : (body.error || "Reset failed (" + status + ").");
        }
      })
      .catch(function () { $("reset-msg").textContent = "The service cannot be reached: not reset."; })
      .then(function () { $("reset-confirm").disabled = false; });
  }

  // Naming a design found in the session, merging it into another one, saying it is not a
  // sock, or that one of its socks is not of it (same token as reset).
  function openDesign(image) {
    naming = image;
    var known = !!sessionStorage.getItem(TOKEN_KEY);
    $("design-label").textContent = image;
    var version = ((last && last.thumbs) || {})[image];
    if (typeof version === "number") $("design-pic").src = "/api/thumb?design=" + encodeURIComponent(image) + "&v=" + version;
    else $("design-pic").removeAttribute("src");
    var others = ((last && last.rows) || []).filter(function (r) { return r.taught === false && r.image !== image; });
    $("design-into").replaceChildren.apply($("design-into"), others.map(function (r) { return el("option", r.image, {value: r.image}); }));
    $("design-into-label").hidden = $("design-merge").hidden = others.length === 0;
    $("design-token-label").hidden = known;
    $("design-msg").textContent = "";
    $("design-name").value = "";
    showSocks(image, []);
    fetch("/api/socks?design=" + encodeURIComponent(image)).then(function (r) { return r.json(); })
      .then(function (socks) { if (naming === image && Array.isArray(socks)) showSocks(image, socks); })
      .catch(function () {});
    $("design-box").hidden = false;
    $("design-name").focus();
  }

  // The design's socks, each with its own picture and a "Not this design" button (a false pair).
  function showSocks(image, socks) {
    var items = socks.length < 2 ? [] : socks.map(function (s) {
      var button = el("button", "Not this design", {type: "button", "class": "secondary split",
                                                     title: "This sock is another design: it becomes a new one"});
      button.addEventListener("click", function () { sendDesign("split", {design: image, sock: s.sock}); });
      var item = el("li");
      item.append(el("img", null, {src: "/api/thumb?sock=" + s.sock, alt: "sock " + s.sock, width: "64", height: "64"}), button);
      return item;
    });
    $("design-socks").replaceChildren.apply($("design-socks"), items);
    $("design-socks-label").hidden = items.length === 0;
  }

  function designBusy(busy) {
    document.querySelectorAll("#design-box button:not(#design-cancel)").forEach(function (b) { b.disabled = busy; });
  }

  function sendDesign(action, body) {
    var token = sessionStorage.getItem(TOKEN_KEY) || $("design-token").value.trim();
    if (!token) { $("design-msg").textContent = "Enter the token first."; return; }
    designBusy(true);
    fetch("/api/" + action, {method: "POST", body: JSON.stringify(body),
                             headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) { return [r.status, b]; });
      })
      .then(function (res) {
        if (res[0] === 200) {
          sessionStorage.setItem(TOKEN_KEY, token);
          $("design-token").value = "";
          $("design-box").hidden = true;
          naming = null;
        } else {
          if (res[0] === 401) { sessionStorage.removeItem(TOKEN_KEY); $("design-token-label").hidden = false; }
          $("design-msg").textContent = res[0] === 401 ? "Wrong token." : (res[1].error || action + " failed (" + res[0] + ").");
        }
      })
      .catch(function () { $("design-msg").textContent = "The service cannot be reached."; })
      .then(function () { designBusy(false); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("design-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var name = $("design-name").value.trim();
      if (!name) { $("design-msg").textContent = "Type a name first."; return; }
      sendDesign("name", {design: naming, name: name});
    });
    $("design-merge").addEventListener("click", function () {
      sendDesign("merge", {design: naming, into: $("design-into").value});
    });
    $("design-forget").addEventListener("click", function () {
      sendDesign("forget", {design: naming});
    });
    $("design-cancel").addEventListener("click", function () { $("design-box").hidden = true; naming = null; });
    $("camera-img").addEventListener("error", function () {
      cameraFailedAt = Date.now();
      $("camera-img").removeAttribute("src");
    });
    $("camera").addEventListener("toggle", function () { if (last) renderCamera(last); });
    $("reset").addEventListener("click", function () { $("reset-msg").textContent = ""; showResetForm(true); });
    $("reset-cancel").addEventListener("click", function () { showResetForm(false); });
    $("reset-form").addEventListener("submit", sendReset);
    fetch("/api/status").then(function (r) { return r.json(); })
      .then(function (s) { if (!pushed) render(s); }).catch(function () {});
    connect();
  });
})();
