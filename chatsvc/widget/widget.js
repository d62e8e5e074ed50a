/* Parley chat widget. Installed with
 *   <script src="https://CHAT_HOST/widget.js" data-site-key="KEY" async></script>
 * It renders inside a shadow root (no CSS or JS leaks either way), talks to
 * the chat server over its WebSocket protocol (docs/protocol.md) and puts
 * every piece of user text on screen with textContent only. */
(function () {
  "use strict";
  if (window.Parley && window.Parley.__parley) return;

  var script = document.currentScript;
  var BASE = script ? new URL(script.src, location.href).origin : location.origin;
  var WS_BASE = BASE.replace(/^http/, "ws");
  var EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😢", "😮", "👍", "👎", "🙏", "👏", "🎉", "❤️", "🔥", "✅", "❓"];

  var state = null; // the booted widget
  var listeners = {};

  function emit(name, data) {
    (listeners[name] || []).slice().forEach(function (fn) {
      try { fn(data); } catch (e) { console.error("Parley listener failed", e); }
    });
  }

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === "class") n.className = attrs[k];
      else n.setAttribute(k, attrs[k]);
    });
    if (text != null) n.textContent = text;
    return n;
  }

  // icon builds a small inline SVG from fixed path data (no user input).
  function icon(d) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "24");
    svg.setAttribute("height", "24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }
  var ICON_CHAT = "M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z";
  var ICON_CLIP = "M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4l7.8-7.8";

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function fmtTime(iso) {
    try { return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); } catch (e) { return ""; }
  }

  function Widget(opts) {
    this.siteKey = opts.siteKey;
    this.user = opts.user || null;
    this.storeKey = "parley:" + this.siteKey + ":token";
    this.messages = {};   // seq → {data, node}
    this.pending = {};    // client_id → {frame, node}
    this.lastSeq = 0;
    this.conv = null;
    this.open = false;
    this.unread = 0;
    this.backoff = 500;
    this.closed = false;
    this.typingTimer = null;
    this.build();
    this.connect();
  }

  Widget.prototype.build = function () {
    var self = this;
    this.host = el("div", { id: "parley-widget-host" });
    this.host.style.cssText = "position:fixed;right:0;bottom:0;width:0;height:0;z-index:2147483000;";
    var root = this.root = this.host.attachShadow({ mode: "open" });
    root.appendChild(el("link", { rel: "stylesheet", href: BASE + "/widget/widget.css" }));
    var wrap = this.wrap = el("div", { class: "parley" });
    root.appendChild(wrap);

    this.launcher = el("button", { class: "launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false", part: "launcher" });
    this.launcher.appendChild(icon(ICON_CHAT));
    this.badge = el("span", { class: "badge", hidden: "" }, "0");
    this.launcher.appendChild(this.badge);
    this.launcher.addEventListener("click", function () { self.setOpen(!self.open); });
    wrap.appendChild(this.launcher);

    var panel = this.panel = el("div", { class: "panel", role: "dialog", "aria-label": "Chat", hidden: "" });
    var header = el("div", { class: "header" });
    var titles = el("div", { class: "titles" });
    this.title = el("h2", { class: "title" }, "Chat");
    this.subtitle = el("p", { class: "subtitle" }, "");
    titles.appendChild(this.title);
    titles.appendChild(this.subtitle);
    this.avatars = el("div", { class: "avatars", "aria-hidden": "true" });
    header.appendChild(this.avatars);
    header.appendChild(titles);
    var closeBtn = el("button", { class: "close", type: "button", "aria-label": "Close chat" }, "×");
    closeBtn.addEventListener("click", function () { self.setOpen(false); });
    header.appendChild(closeBtn);
    panel.appendChild(header);

    this.notice = el("div", { class: "notice", role: "status", hidden: "" });
    panel.appendChild(this.notice);
    this.greeting = el("p", { class: "greeting" }, "");
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    this.log.appendChild(this.greeting);
    panel.appendChild(this.log);
    this.typingNode = el("div", { class: "typing", "aria-live": "polite", hidden: "" }, "");
    panel.appendChild(this.typingNode);

    this.form = el("div", { class: "form-area" });
    panel.appendChild(this.form);

    var composer = this.composer = el("form", { class: "composer" });
    this.input = el("textarea", { rows: "1", placeholder: "Write a message…", "aria-label": "Message", maxlength: "4000" });
    this.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); self.sendText(); }
    });
    this.input.addEventListener("input", function () { self.typing(true); });
    var emojiBtn = el("button", { type: "button", class: "icon", "aria-label": "Insert emoji", "aria-expanded": "false" }, "😊");
    this.emojiPanel = el("div", { class: "emoji", role: "listbox", "aria-label": "Emoji", hidden: "" });
    EMOJI.forEach(function (e) {
      var b = el("button", { type: "button", role: "option", "aria-label": "Emoji " + e }, e);
      b.addEventListener("click", function () {
        self.input.value += e;
        self.emojiPanel.hidden = true;
        emojiBtn.setAttribute("aria-expanded", "false");
        self.input.focus();
      });
      self.emojiPanel.appendChild(b);
    });
    emojiBtn.addEventListener("click", function () {
      self.emojiPanel.hidden = !self.emojiPanel.hidden;
      emojiBtn.setAttribute("aria-expanded", String(!self.emojiPanel.hidden));
    });
    this.fileInput = el("input", { type: "file", hidden: "", "aria-hidden": "true" });
    this.fileInput.addEventListener("change", function () {
      if (self.fileInput.files[0]) self.upload(self.fileInput.files[0]);
      self.fileInput.value = "";
    });
    var attachBtn = el("button", { type: "button", class: "icon", "aria-label": "Attach a file" });
    attachBtn.appendChild(icon(ICON_CLIP));
    attachBtn.addEventListener("click", function () { self.fileInput.click(); });
    var sendBtn = el("button", { type: "submit", class: "send", "aria-label": "Send message" }, "Send");
    composer.addEventListener("submit", function (ev) { ev.preventDefault(); self.sendText(); });
    composer.appendChild(emojiBtn);
    composer.appendChild(attachBtn);
    composer.appendChild(this.input);
    composer.appendChild(sendBtn);
    composer.appendChild(this.fileInput);
    panel.appendChild(this.emojiPanel);
    panel.appendChild(composer);
    wrap.appendChild(panel);

    panel.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { self.setOpen(false); self.launcher.focus(); }
    });
    document.body.appendChild(this.host);
  };

  Widget.prototype.setOpen = function (open) {
    this.open = open;
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    this.launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    this.wrap.classList.toggle("is-open", open);
    if (open) {
      this.unread = 0;
      this.renderBadge();
      this.markRead();
      var self = this;
      setTimeout(function () { self.input.focus(); }, 0);
    }
    emit(open ? "open" : "close", {});
  };

  Widget.prototype.renderBadge = function () {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 9 ? "9+" : String(this.unread);
    this.launcher.setAttribute("aria-label", (this.open ? "Close chat" : "Open chat") + (this.unread ? " (" + this.unread + " unread)" : ""));
  };

  Widget.prototype.setNotice = function (text, kind) {
    this.notice.hidden = !text;
    this.notice.textContent = text || "";
    this.notice.className = "notice" + (kind ? " " + kind : "");
  };

  // Session and socket.

  Widget.prototype.connect = function () {
    var self = this;
    if (this.closed) return;
    var body = { site_key: this.siteKey, token: localStorage.getItem(this.storeKey) || "" };
    if (this.user) body.user = this.user;
    fetch(BASE + "/api/chat/visitor/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; });
    }).then(function (res) {
      if (!res.ok) {
        if (res.body.code === "banned") return self.showBanned(res.body.until);
        self.setNotice("Chat is unavailable: " + (res.body.message || res.status), "error");
        if (res.status >= 500 || res.status === 429) self.retry();
        return;
      }
      self.token = res.body.token;
      self.visitorId = res.body.visitor_id;
      localStorage.setItem(self.storeKey, self.token);
      self.openSocket();
    }).catch(function () { self.retry(); });
  };

  Widget.prototype.retry = function () {
    var self = this;
    if (this.closed) return;
    var wait = this.backoff * (0.75 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, 10000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(function () { self.connect(); }, wait);
  };

  Widget.prototype.openSocket = function () {
    var self = this;
    var ws = this.ws = new WebSocket(WS_BASE + "/ws/visitor?token=" + encodeURIComponent(this.token));
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      self.onFrame(f);
    };
    ws.onclose = function () {
      if (self.ws === ws) self.ws = null;
      if (!self.closed && !self.banned) {
        self.wrap.classList.add("offline-net");
        self.retry();
      }
    };
    ws.onopen = function () {
      self.backoff = 500;
      self.wrap.classList.remove("offline-net");
    };
  };

  Widget.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === 1) { this.ws.send(JSON.stringify(frame)); return true; }
    return false;
  };

  Widget.prototype.onFrame = function (f) {
    switch (f.type) {
      case "hello": return this.onHello(f);
      case "message": return this.addMessage(f.message);
      case "messages":
        (f.messages || []).forEach(this.addMessage, this);
        return;
      case "ack": return this.onAck(f);
      case "blocked": return this.onBlocked(f);
      case "typing":
        this.typingNode.hidden = !f.typing;
        this.typingNode.textContent = f.typing ? (f.name || "Agent") + " is typing…" : "";
        return;
      case "receipt": return this.onReceipt(f);
      case "conversation": return this.onConversation(f.conversation);
      case "queue":
        this.setNotice("You are number " + f.position + " in line. An agent will be with you soon.", "info");
        return;
      case "message_hidden": return this.hideMessage(f.seq);
      case "message_restored": return this.addMessage(f.message, true);
      case "banned": return this.showBanned(f.until);
      case "error":
        if (f.code === "rate_limited") this.setNotice(f.message, "error");
        else if (f.code === "banned") this.showBanned();
        return;
    }
  };

  Widget.prototype.onHello = function (f) {
    var site = f.site || {};
    this.site = site;
    this.online = f.online;
    this.title.textContent = site.name || "Chat";
    this.subtitle.textContent = f.online ? (site.reply_time ? "We usually reply in " + site.reply_time : "We are online") : "We are away right now";
    this.greeting.textContent = site.greeting || "";
    this.greeting.hidden = !site.greeting;
    if (site.color && /^#[0-9a-fA-F]{3,8}$/.test(site.color)) this.wrap.style.setProperty("--parley-color", site.color);
    this.avatars.textContent = "";
    (site.avatars || []).slice(0, 3).forEach(function (src) {
      if (/^(https?:)?\//.test(src)) this.avatars.appendChild(el("img", { src: new URL(src, BASE).href, alt: "" }));
    }, this);
    this.send({ type: "context", page_url: location.href, referrer: document.referrer, title: document.title,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "", locale: navigator.language || "" });
    if (f.conversation) {
      this.onConversation(f.conversation);
      this.send({ type: "resume", conversation_id: f.conversation.id, after_seq: this.lastSeq });
    }
    this.renderForms();
    // Resend what was never acknowledged; the server deduplicates by client_id.
    var self = this;
    Object.keys(this.pending).forEach(function (id) { self.send(self.pending[id].frame); });
  };

  Widget.prototype.renderForms = function () {
    var self = this;
    var hasConv = !!this.conv;
    var mode = !this.online && !hasConv ? "offline" : "";
    // After an offline message the conversation it created arrives; the
    // visitor keeps seeing the thank-you note rather than a bare thread.
    if (this.offlineSent && this.form.querySelector(".thanks")) return;
    // A reconnect or presence change re-renders; a form the visitor is
    // filling in stays as it is instead of being rebuilt empty.
    if (mode && mode === this.formMode && this.form.firstChild) return;
    this.formMode = mode;
    this.form.textContent = "";
    if (mode === "offline") {
      this.composer.hidden = true;
      var f = el("form", { class: "offline-form", "aria-label": "Leave a message" });
      f.appendChild(el("p", null, (this.site && this.site.offline_message) || "We are away. Leave a message and we will get back to you."));
      var name = field(f, "Name", "text", "name", false);
      var email = field(f, "Email", "email", "email", true);
      var text = el("textarea", { name: "text", required: "", "aria-label": "Message", rows: "3" });
      f.appendChild(text);
      f.appendChild(el("button", { type: "submit", class: "send" }, "Send message"));
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var id = uid();
        var frame = { type: "offline_message", client_id: id, name: name.value, email: email.value, text: text.value };
        self.pending[id] = { frame: frame, node: self.renderOwn(id, text.value) };
        self.send(frame);
        self.offlineSent = true;
        self.form.textContent = "";
        self.form.appendChild(el("p", { class: "thanks", role: "status" }, "Thanks! We will reply by email."));
      });
      this.form.appendChild(f);
      return;
    }
    var pre = this.site && this.site.prechat;
    if (pre && pre.enabled && !hasConv && !this.prechatDone) {
      this.composer.hidden = true;
      var pf = el("form", { class: "prechat", "aria-label": "Before we start" });
      var pname = field(pf, "Name", "text", "name", false);
      var pemail = field(pf, "Email", "email", "email", false);
      var extra = (pre.fields || []).map(function (fd) { return [fd.name, field(pf, fd.label || fd.name, "text", fd.name, fd.required)]; });
      pf.appendChild(el("button", { type: "submit", class: "send" }, "Start chat"));
      pf.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var fields = {};
        extra.forEach(function (p) { if (p[1].value) fields[p[0]] = p[1].value; });
        self.send({ type: "prechat", name: pname.value, email: pemail.value, fields: fields });
        self.prechatDone = true;
        self.renderForms();
      });
      this.form.appendChild(pf);
      return;
    }
    this.composer.hidden = !!this.banned;
  };

  function field(form, label, type, name, required) {
    var id = "p-" + name + "-" + Math.random().toString(36).slice(2, 7);
    form.appendChild(el("label", { for: id }, label));
    var input = el("input", { id: id, type: type, name: name });
    if (required) input.required = true;
    form.appendChild(input);
    return input;
  }

  Widget.prototype.onConversation = function (c) {
    if (!c) return;
    var changed = !this.conv || this.conv.id !== c.id;
    this.conv = c;
    if (changed) this.renderForms();
    if (c.routing === "assigned" && c.assignee) this.setNotice(c.assignee.name ? c.assignee.name + " joined the chat" : "", "info");
    else if (c.routing !== "queued") this.setNotice("");
    this.renderReceipts();
    if (c.status === "resolved" && !c.csat) this.showCSAT();
    emit("conversation", c);
  };

  Widget.prototype.showCSAT = function () {
    var self = this;
    if (this.log.querySelector(".csat")) return;
    var box = el("form", { class: "csat", "aria-label": "Rate this conversation" });
    box.appendChild(el("p", null, "How did we do?"));
    var rating = 0;
    var stars = el("div", { class: "stars", role: "radiogroup", "aria-label": "Rating from 1 to 5" });
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", { type: "button", role: "radio", "aria-checked": "false", "aria-label": n + " of 5" }, "★");
      b.addEventListener("click", function () {
        rating = n;
        Array.prototype.forEach.call(stars.children, function (s, i) {
          s.classList.toggle("on", i < n);
          s.setAttribute("aria-checked", String(i + 1 === n));
        });
      });
      stars.appendChild(b);
    });
    box.appendChild(stars);
    var comment = el("textarea", { rows: "2", "aria-label": "Comment (optional)", placeholder: "Comment (optional)" });
    box.appendChild(comment);
    box.appendChild(el("button", { type: "submit", class: "send" }, "Send rating"));
    box.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!rating) return;
      self.send({ type: "csat", conversation_id: self.conv.id, rating: rating, comment: comment.value });
      box.textContent = "";
      box.appendChild(el("p", { role: "status" }, "Thank you for your feedback!"));
    });
    this.log.appendChild(box);
    this.scroll();
  };

  Widget.prototype.showBanned = function (until) {
    this.banned = true;
    this.composer.hidden = true;
    this.form.textContent = "";
    var when = until ? " until " + new Date(until).toLocaleString() : "";
    this.setNotice("You can no longer send messages in this chat" + when + ".", "error");
  };

  // Messages.

  Widget.prototype.renderOwn = function (clientId, text, attachments) {
    var node = this.messageNode({ author: { role: "visitor" }, text: text, attachments: attachments || [], created_at: new Date().toISOString() });
    node.classList.add("pending");
    node.dataset.client = clientId;
    this.log.appendChild(node);
    this.scroll();
    return node;
  };

  Widget.prototype.messageNode = function (m) {
    var mine = m.author && m.author.role === "visitor";
    var node = el("div", { class: "msg " + (mine ? "mine" : "theirs") + (m.author && m.author.role === "bot" ? " bot" : "") });
    if (!mine && m.author && m.author.name) node.appendChild(el("span", { class: "who" }, m.author.name));
    if (m.text) node.appendChild(el("p", { class: "text" }, m.text));
    (m.attachments || []).forEach(function (a) {
      var url = new URL(a.url, BASE).href;
      if (/^image\//.test(a.content_type)) {
        var link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" });
        link.appendChild(el("img", { src: url, alt: a.name, class: "preview" }));
        node.appendChild(link);
      } else {
        node.appendChild(el("a", { href: url, class: "file", download: a.name, rel: "noopener noreferrer" }, a.name));
      }
    });
    var meta = el("span", { class: "meta" }, fmtTime(m.created_at));
    node.appendChild(meta);
    return node;
  };

  Widget.prototype.addMessage = function (m, replace) {
    if (!m) return;
    if (!this.conv) this.conv = { id: m.conversation_id };
    if (m.conversation_id !== this.conv.id) return;
    if (m.status === "hidden") return this.hideMessage(m.seq);
    var have = this.messages[m.seq];
    if (have && !replace) return;
    var node = this.messageNode(m);
    if (m.status === "blocked") {
      node.classList.add("blocked");
      node.appendChild(el("span", { class: "blocked-note" }, "Not delivered"));
    }
    node.dataset.seq = m.seq;
    if (have) have.node.replaceWith(node);
    else this.insertInOrder(node, m.seq);
    this.messages[m.seq] = { data: m, node: node };
    if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    var mine = m.author.role === "visitor";
    if (!mine && !replace) {
      this.typingNode.hidden = true;
      this.send({ type: "delivered", conversation_id: m.conversation_id, up_to_seq: m.seq });
      if (this.open && document.visibilityState !== "hidden") this.markRead();
      else { this.unread++; this.renderBadge(); }
      emit("message", { id: m.id, text: m.text, author: m.author, created_at: m.created_at });
    }
    this.renderReceipts();
    this.scroll();
  };

  Widget.prototype.insertInOrder = function (node, seq) {
    var nodes = this.log.querySelectorAll(".msg[data-seq]");
    for (var i = 0; i < nodes.length; i++) {
      if (Number(nodes[i].dataset.seq) > seq) { this.log.insertBefore(node, nodes[i]); return; }
    }
    var csat = this.log.querySelector(".csat");
    var firstPending = this.log.querySelector(".msg.pending");
    this.log.insertBefore(node, firstPending || csat || null);
  };

  Widget.prototype.hideMessage = function (seq) {
    var have = this.messages[seq];
    if (have) have.node.remove();
    this.messages[seq] = { data: { seq: seq, status: "hidden" }, node: el("span") };
  };

  Widget.prototype.onAck = function (f) {
    var p = this.pending[f.client_id];
    delete this.pending[f.client_id];
    if (!this.conv || this.conv.id !== f.conversation_id) this.conv = Object.assign({}, this.conv || {}, { id: f.conversation_id });
    if (p && p.node) p.node.remove();
    var m = { id: f.message_id, conversation_id: f.conversation_id, seq: f.seq, client_id: f.client_id, author: { role: "visitor", id: this.visitorId },
      kind: "text", text: f.text, attachments: p && p.attachments || [], status: "visible", created_at: f.created_at };
    var have = this.messages[f.seq];
    if (have && have.data.attachments && have.data.attachments.length) m.attachments = have.data.attachments;
    this.addMessage(m, !!have);
    if (f.redacted) this.setNotice("Part of your message was hidden for your privacy.", "info");
  };

  Widget.prototype.onBlocked = function (f) {
    var p = this.pending[f.client_id];
    delete this.pending[f.client_id];
    if (p && p.node) p.node.remove();
    var m = { id: f.message_id, conversation_id: f.conversation_id, seq: f.seq, author: { role: "visitor" }, text: p ? p.text : "", status: "blocked", created_at: new Date().toISOString() };
    this.addMessage(m, true);
    this.setNotice(f.reason || "Your message was not delivered.", "error");
  };

  Widget.prototype.onReceipt = function (f) {
    if (!this.conv || f.conversation_id !== this.conv.id || f.role === "visitor") return;
    if (f.kind === "read") this.conv.agent_read_seq = Math.max(this.conv.agent_read_seq || 0, f.up_to_seq);
    else this.delivered = Math.max(this.delivered || 0, f.up_to_seq);
    this.renderReceipts();
  };

  Widget.prototype.renderReceipts = function () {
    var old = this.log.querySelector(".receipt");
    if (old) old.remove();
    if (!this.conv) return;
    var lastMine = null;
    Object.keys(this.messages).forEach(function (k) {
      var m = this.messages[k].data;
      if (m.author && m.author.role === "visitor" && m.status === "visible" && (!lastMine || m.seq > lastMine.seq)) lastMine = m;
    }, this);
    if (!lastMine) return;
    var text = (this.conv.agent_read_seq || 0) >= lastMine.seq ? "Read" : (this.delivered || 0) >= lastMine.seq ? "Delivered" : "Sent";
    this.messages[lastMine.seq].node.appendChild(el("span", { class: "receipt" }, text));
  };

  Widget.prototype.markRead = function () {
    if (!this.conv || !this.lastSeq) return;
    if ((this.readSent || 0) >= this.lastSeq) return;
    this.readSent = this.lastSeq;
    this.send({ type: "read", conversation_id: this.conv.id, up_to_seq: this.lastSeq });
  };

  Widget.prototype.scroll = function () { this.log.scrollTop = this.log.scrollHeight; };

  Widget.prototype.sendText = function () {
    var text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    this.typing(false);
    this.post(text, []);
  };

  Widget.prototype.post = function (text, attachments) {
    var id = uid();
    var frame = { type: "send", client_id: id, text: text, attachments: attachments.map(function (a) { return a.id; }) };
    if (this.conv && this.conv.id) frame.conversation_id = this.conv.id;
    this.pending[id] = { frame: frame, text: text, attachments: attachments, node: this.renderOwn(id, text, attachments) };
    this.send(frame); // if the socket is down, the reconnect resends it
  };

  Widget.prototype.upload = function (file) {
    var self = this;
    var max = 10 * 1024 * 1024;
    if (file.size > max) { this.setNotice("That file is larger than 10 MB.", "error"); return; }
    var body = new FormData();
    body.append("file", file, file.name);
    fetch(BASE + "/api/chat/visitor/attachments", { method: "POST", headers: { Authorization: "Bearer " + this.token }, body: body })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { self.setNotice(res.body.message || "Upload failed.", "error"); return; }
        self.post("", [res.body]);
      })
      .catch(function () { self.setNotice("Upload failed; check your connection.", "error"); });
  };

  Widget.prototype.typing = function (on) {
    var self = this;
    if (!this.conv || !this.conv.id) return;
    if (on && !this.isTyping) { this.isTyping = true; this.send({ type: "typing", conversation_id: this.conv.id, typing: true }); }
    clearTimeout(this.typingTimer);
    if (on) this.typingTimer = setTimeout(function () { self.typing(false); }, 3000);
    else if (this.isTyping) { this.isTyping = false; this.send({ type: "typing", conversation_id: this.conv.id, typing: false }); }
  };

  Widget.prototype.destroy = function () {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close();
    this.host.remove();
  };

  document.addEventListener("visibilitychange", function () {
    if (state && state.open && document.visibilityState === "visible") state.markRead();
  });

  window.Parley = {
    __parley: true,
    boot: function (opts) {
      opts = opts || {};
      if (!opts.siteKey) throw new Error("Parley.boot needs {siteKey}");
      if (state) state.destroy();
      state = new Widget(opts);
      return window.Parley;
    },
    open: function () { if (state) state.setOpen(true); },
    close: function () { if (state) state.setOpen(false); },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); return window.Parley; },
    off: function (name, fn) { listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; }); },
    shutdown: function () {
      if (!state) return;
      if (state.conv && state.conv.id) state.send({ type: "leave", conversation_id: state.conv.id });
      try { localStorage.removeItem(state.storeKey); } catch (e) { /* storage may be blocked */ }
      state.destroy();
      state = null;
    }
  };

  var key = script && script.getAttribute("data-site-key");
  if (key && script.getAttribute("data-manual") == null) {
    var start = function () { window.Parley.boot({ siteKey: key }); };
    if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  }
})();
