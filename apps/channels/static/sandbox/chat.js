// Sandbox chat: posts messages to the sandbox API and polls the conversation.
// Every piece of message or profile text goes through textContent, never innerHTML: the page must not run
// what a WhatsApp user (or a template value) wrote.
(function () {
  "use strict";

  var POLL_MS = 1000;
  // Outbound statuses after which a bubble no longer changes; inbound ones once processed.
  var SETTLED = { read: true, failed: true, processed: true };
  var TICKS = { queued: "🕓", sending: "🕓", unknown: "?", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

  var root = document.getElementById("chat");
  var api = root.getAttribute("data-api");
  var log = document.getElementById("log");
  var phoneInput = document.getElementById("phone");
  var nameInput = document.getElementById("name");
  var textInput = document.getElementById("text");
  var sendButton = document.getElementById("send");
  var errorBox = document.getElementById("error");
  var connection = document.getElementById("connection");

  var bubbles = new Map(); // message id → {el, message}
  var lastId = 0;
  var pollTimer = null;
  var pollGeneration = 0;

  function store(key, value) {
    try { window.localStorage.setItem("relay.sandbox." + key, value); } catch (e) { /* private mode */ }
  }
  function stored(key) {
    try { return window.localStorage.getItem("relay.sandbox." + key); } catch (e) { return null; }
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function statusClass(status) {
    return "status-" + String(status || "").replace(/[^a-z_]/g, "");
  }

  function timeOf(iso) {
    var date = new Date(iso);
    return isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function render(message) {
    var id = Number(message.id);
    var entry = bubbles.get(id);
    var bubble;
    if (entry) {
      bubble = entry.el;
      while (bubble.firstChild) bubble.removeChild(bubble.firstChild);
    } else {
      bubble = el("div", "bubble");
      bubble.setAttribute("data-id", String(id));
      insertInOrder(bubble, id);
    }
    var outbound = message.direction === "out";
    bubble.className = "bubble " + (outbound ? "out" : "in");
    bubble.setAttribute("data-status", String(message.status || ""));
    if (message.template_name) {
      var label = el("span", "template", "📄 " + message.template_name);
      label.title = "WhatsApp template";
      bubble.appendChild(label);
    }
    bubble.appendChild(el("span", "text", message.text || (message.kind ? "[" + message.kind + "]" : "")));
    if (message.error_message || message.error_code) {
      bubble.appendChild(el("span", "problem", [message.error_code, message.error_message].filter(Boolean).join(": ")));
    }
    var meta = el("span", "meta");
    if (!outbound && message.route) {
      meta.appendChild(el("span", "route", message.route + (message.intent ? " · " + message.intent : "")));
    }
    meta.appendChild(el("span", "time", timeOf(message.created_at)));
    if (outbound) {
      var ticks = el("span", "ticks " + statusClass(message.status), TICKS[message.status] || "");
      ticks.title = String(message.status || "");
      meta.appendChild(ticks);
    }
    bubble.appendChild(meta);
    bubbles.set(id, { el: bubble, message: message });
    if (id > lastId) lastId = id;
  }

  function insertInOrder(bubble, id) {
    var nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    var next = null;
    bubbles.forEach(function (entry, otherId) {
      if (otherId > id && (next === null || otherId < Number(next.getAttribute("data-id")))) next = entry.el;
    });
    log.insertBefore(bubble, next);
    if (nearBottom || !next) log.scrollTop = log.scrollHeight;
  }

  // Poll from just before the oldest message that can still change, so status ticks update too.
  function pollAfter() {
    var after = lastId;
    bubbles.forEach(function (entry, id) {
      if (!SETTLED[entry.message.status] && id - 1 < after) after = id - 1;
    });
    return Math.max(after, 0);
  }

  function phone() {
    return phoneInput.value.trim();
  }

  function poll() {
    var generation = pollGeneration;
    var number = phone();
    if (!number) return schedule();
    var url = api + "?phone=" + encodeURIComponent(number) + "&after=" + pollAfter();
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (generation !== pollGeneration) return;
        if (!result.ok) {
          connection.textContent = (result.body.error && result.body.error.message) || "sandbox unavailable";
          return;
        }
        connection.textContent = "sandbox channel · real pipeline";
        (result.body.messages || []).forEach(render);
      })
      .catch(function () {
        connection.textContent = "offline, retrying…";
      })
      .then(schedule);
  }

  function schedule() {
    window.clearTimeout(pollTimer);
    pollTimer = window.setTimeout(poll, POLL_MS);
  }

  function restart() {
    pollGeneration += 1;
    bubbles.clear();
    lastId = 0;
    while (log.firstChild) log.removeChild(log.firstChild);
    store("phone", phone());
    poll();
  }

  function send(event) {
    event.preventDefault();
    var text = textInput.value;
    if (!text.trim()) return;
    showError("");
    sendButton.disabled = true;
    store("name", nameInput.value);
    fetch(api, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ phone: phone(), name: nameInput.value, text: text }),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) {
          showError((result.body.error && result.body.error.message) || "Could not send.");
          return;
        }
        textInput.value = "";
        render(result.body.message);
        schedule();
      })
      .catch(function (error) { showError("Could not send: " + error); })
      .then(function () {
        sendButton.disabled = false;
        textInput.focus();
      });
  }

  var savedPhone = stored("phone");
  var savedName = stored("name");
  if (savedPhone) phoneInput.value = savedPhone;
  if (savedName !== null) nameInput.value = savedName;
  document.getElementById("composer").addEventListener("submit", send);
  document.getElementById("identity").addEventListener("submit", function (e) { e.preventDefault(); });
  phoneInput.addEventListener("change", restart);
  nameInput.addEventListener("change", function () { store("name", nameInput.value); });
  poll();
  textInput.focus();
})();
