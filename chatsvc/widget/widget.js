/* Parley chat widget. Installed with
 *   <script src="https://CHAT_HOST/widget.js" data-site-key="KEY" async></script>
 * It renders inside a shadow root (no CSS or JS leaks either way), talks to
 * the chat server over its WebSocket protocol (docs/protocol.md) and puts
 * every piece of user text on screen with textContent only.
 * Every word it shows comes from the server's message catalog for the
 * visitor's language (GET /api/chat/visitor/i18n, docs/widget.md): this file
 * names catalog keys, never visitor-facing text. */
(function () {
  "use strict";
  if (window.Parley && window.Parley.__parley) return;

  var script = document.currentScript;
  var BASE = script ? new URL(script.src, location.href).origin : location.origin;
  var WS_BASE = BASE.replace(/^http/, "ws");
  var EMOJI = ["😀", "😂", "😊", "😍", "🤔", "😢", "😮", "👍", "👎", "🙏", "👏", "🎉", "❤️", "🔥", "✅", "❓"];
  // Error codes of the chat protocol the visitor is told about, by catalog key.
  var ERROR_TEXTS = {
    rate_limited: "error.rate_limited",
    message_too_long: "error.message_too_long",
    internal: "error.generic"
  };

  var state = null; // the booted widget
  var listeners = {};
  var ids = 0;

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

  function nextId(prefix) { ids++; return "parley-" + prefix + "-" + ids; }

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
  var ICON_SEND = "M22 2L11 13M22 2l-7 20-4-9-9-4 20-7z";
  var ICON_CLIP = "M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4l7.8-7.8";

  function uid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  // Colour contrast (WCAG 2.1): the site's colour carries white text only
  // when white reaches 4.5:1 on it; otherwise the widget writes in dark ink.
  var INK = "#111827";
  function luminance(hex) {
    var h = hex.replace("#", "");
    if (h.length === 3 || h.length === 4) h = h.split("").map(function (c) { return c + c; }).join("");
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }
  function readableOn(color) {
    var white = contrast(color, "#ffffff");
    if (white >= 4.5) return "#ffffff";
    return contrast(color, INK) >= white ? INK : "#ffffff";
  }

  function Widget(opts) {
    this.siteKey = opts.siteKey;
    this.user = opts.user || null;
    this.language = opts.language || "";
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
    this.limits = {};
    this.takeResumeToken();
    this.loadTexts();
  }

  // takeResumeToken adopts the visitor token of a link in a Parley email
  // (#parley_resume=...), so the conversation continues where the mail
  // left it, and opens the chat once built.
  Widget.prototype.takeResumeToken = function () {
    var m = /(?:^#|&)parley_resume=([^&]+)/.exec(location.hash);
    if (!m) return;
    try { localStorage.setItem(this.storeKey, decodeURIComponent(m[1])); } catch (e) { /* storage may be blocked */ }
    this.openWhenBuilt = true;
    if (history.replaceState) history.replaceState(null, "", location.pathname + location.search);
  };

  // Language and texts.

  // loadTexts asks the chat server which of the site's languages fits the
  // visitor (the page's choice, else the browser's preferences) and for
  // its texts, then builds the widget and connects.
  Widget.prototype.loadTexts = function () {
    var self = this;
    if (this.closed) return;
    var prefs = this.language ? [this.language] : (navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""]);
    fetch(BASE + "/api/chat/visitor/i18n?site_key=" + encodeURIComponent(this.siteKey) + "&langs=" + encodeURIComponent(prefs.join(",")))
      .then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; });
      })
      .then(function (res) {
        if (self.closed) return;
        if (!res.ok) {
          // A wrong site key or origin does not heal by retrying: say why, once.
          console.error("Parley: the widget cannot start:", res.body.message || res.status);
          if (res.status >= 500 || res.status === 429) self.retry(function () { self.loadTexts(); });
          return;
        }
        self.setTexts(res.body);
        self.build();
        if (self.openWhenBuilt) self.setOpen(true);
        self.connect();
      })
      .catch(function (e) {
        console.error("Parley: could not load the widget's texts", e);
        self.retry(function () { self.loadTexts(); });
      });
  };

  Widget.prototype.setTexts = function (i18n) {
    this.i18n = i18n;
    this.plural = new Intl.PluralRules(i18n.lang);
    this.number = new Intl.NumberFormat(i18n.lang);
    this.timeFormat = new Intl.DateTimeFormat(i18n.lang, { hour: "2-digit", minute: "2-digit" });
    this.dateFormat = new Intl.DateTimeFormat(i18n.lang, { dateStyle: "medium", timeStyle: "short" });
  };

  // t renders a catalog text: {name} placeholders from args, and for texts
  // that count, the plural form of args.count in the visitor's language.
  Widget.prototype.t = function (key, args) {
    var m = this.i18n.messages[key];
    if (m == null) return key;
    if (typeof m === "object") {
      var n = args && typeof args.count === "number" ? args.count : 0;
      m = m[this.plural.select(n)] || m.other || "";
    }
    var self = this;
    return m.replace(/\{([a-z_]+)\}/g, function (all, name) {
      if (!args || args[name] == null) return all;
      return typeof args[name] === "number" ? self.number.format(args[name]) : String(args[name]);
    });
  };

  Widget.prototype.fmtTime = function (iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? "" : this.timeFormat.format(d);
  };

  // Building.

  Widget.prototype.build = function () {
    var self = this;
    this.host = el("div", { id: "parley-widget-host" });
    this.host.style.cssText = "position:fixed;right:0;bottom:0;width:0;height:0;z-index:2147483000;";
    var root = this.root = this.host.attachShadow({ mode: "open" });
    root.appendChild(el("link", { rel: "stylesheet", href: BASE + "/widget/widget.css" }));
    var wrap = this.wrap = el("div", { class: "parley", dir: this.i18n.dir, lang: this.i18n.lang });
    root.appendChild(wrap);

    var panelId = nextId("panel");
    var titleId = nextId("title");
    this.launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": panelId, part: "launcher" });
    this.launcher.appendChild(icon(ICON_CHAT));
    this.badge = el("span", { class: "badge", "aria-hidden": "true", hidden: "" }, "0");
    this.launcher.appendChild(this.badge);
    this.launcher.addEventListener("click", function () { self.setOpen(!self.open); });
    wrap.appendChild(this.launcher);
    this.renderBadge();

    var panel = this.panel = el("div", { class: "panel", id: panelId, role: "dialog", "aria-labelledby": titleId, hidden: "" });
    var header = el("div", { class: "header" });
    var titles = el("div", { class: "titles" });
    this.title = el("h2", { class: "title", id: titleId }, this.t("panel.title"));
    this.subtitle = el("p", { class: "subtitle", dir: "auto" }, "");
    titles.appendChild(this.title);
    titles.appendChild(this.subtitle);
    this.avatars = el("div", { class: "avatars", "aria-hidden": "true" });
    header.appendChild(this.avatars);
    header.appendChild(titles);
    var closeBtn = el("button", { class: "close", type: "button", "aria-label": this.t("panel.close") });
    closeBtn.appendChild(el("span", { "aria-hidden": "true" }, "×"));
    closeBtn.addEventListener("click", function () { self.setOpen(false, true); });
    header.appendChild(closeBtn);
    this.closeBtn = closeBtn;
    panel.appendChild(header);

    this.notice = el("div", { class: "notice", role: "status", hidden: "" });
    panel.appendChild(this.notice);
    this.greeting = el("p", { class: "greeting", dir: "auto" }, "");
    // The log is a labelled, focusable region (it scrolls); it is not a
    // live region, so a resumed backlog is not read out. New messages from
    // the other side are announced through this.live instead.
    this.log = el("div", { class: "log", role: "region", tabindex: "0", "aria-label": this.t("log.label") });
    this.log.appendChild(this.greeting);
    panel.appendChild(this.log);
    this.live = el("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "false" });
    panel.appendChild(this.live);
    this.typingNode = el("div", { class: "typing", "aria-live": "polite", hidden: "" }, "");
    panel.appendChild(this.typingNode);

    this.form = el("div", { class: "form-area" });
    panel.appendChild(this.form);

    var composer = this.composer = el("form", { class: "composer" });
    this.input = el("textarea", { rows: "1", dir: "auto", placeholder: this.t("composer.placeholder"), "aria-label": this.t("composer.label"), maxlength: "4000" });
    this.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); self.sendText(); }
    });
    this.input.addEventListener("input", function () { self.typing(true); });
    var emojiPanelId = nextId("emoji");
    var emojiBtn = this.emojiBtn = el("button", { type: "button", class: "icon", "aria-label": this.t("composer.emoji"), "aria-expanded": "false", "aria-controls": emojiPanelId });
    emojiBtn.appendChild(el("span", { "aria-hidden": "true" }, "😊"));
    this.emojiPanel = el("div", { class: "emoji", id: emojiPanelId, role: "group", "aria-label": this.t("composer.emoji_panel"), hidden: "" });
    EMOJI.forEach(function (e) {
      var b = el("button", { type: "button", "aria-label": self.t("composer.emoji_item", { emoji: e }) }, e);
      b.addEventListener("click", function () {
        self.input.value += e;
        self.showEmoji(false);
        self.input.focus();
      });
      self.emojiPanel.appendChild(b);
    });
    emojiBtn.addEventListener("click", function () { self.showEmoji(self.emojiPanel.hidden); });
    this.fileInput = el("input", { type: "file", hidden: "", tabindex: "-1", "aria-hidden": "true" });
    this.fileInput.addEventListener("change", function () {
      if (self.fileInput.files[0]) self.upload(self.fileInput.files[0]);
      self.fileInput.value = "";
    });
    var attachBtn = el("button", { type: "button", class: "icon", "aria-label": this.t("composer.attach") });
    attachBtn.appendChild(icon(ICON_CLIP));
    attachBtn.addEventListener("click", function () { self.fileInput.click(); });
    // An icon button (its name is the label): room for a long placeholder in any language.
    var sendBtn = el("button", { type: "submit", class: "send icon-send", "aria-label": this.t("composer.send_label") });
    sendBtn.appendChild(icon(ICON_SEND));
    composer.addEventListener("submit", function (ev) { ev.preventDefault(); self.sendText(); });
    composer.appendChild(emojiBtn);
    composer.appendChild(attachBtn);
    composer.appendChild(this.input);
    composer.appendChild(sendBtn);
    composer.appendChild(this.fileInput);
    panel.appendChild(this.emojiPanel);
    panel.appendChild(composer);
    wrap.appendChild(panel);

    // Escape closes the emoji picker first, then the panel; focus goes
    // back to what opened it.
    wrap.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape" || !self.open) return;
      ev.preventDefault();
      if (!self.emojiPanel.hidden) { self.showEmoji(false); self.emojiBtn.focus(); return; }
      self.setOpen(false, true);
    });
    document.body.appendChild(this.host);
  };

  Widget.prototype.showEmoji = function (show) {
    this.emojiPanel.hidden = !show;
    this.emojiBtn.setAttribute("aria-expanded", String(show));
    if (show) this.emojiPanel.querySelector("button").focus();
  };

  // setOpen shows or hides the panel. Opening moves focus into it; closing
  // with returnFocus (close button, Escape) puts focus back on the launcher.
  Widget.prototype.setOpen = function (open, returnFocus) {
    this.open = open;
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    this.wrap.classList.toggle("is-open", open);
    if (open) {
      this.unread = 0;
      this.markRead();
      var self = this;
      setTimeout(function () { self.focusFirst(); }, 0);
    } else {
      this.showEmoji(false);
      if (returnFocus) this.launcher.focus();
    }
    this.renderBadge();
    emit(open ? "open" : "close", {});
  };

  // focusFirst focuses the control the visitor most likely wants: the first
  // field of a form, else the composer, else the close button.
  Widget.prototype.focusFirst = function () {
    var target = this.form.querySelector("input, textarea, button");
    if (!target && !this.composer.hidden) target = this.input;
    (target || this.closeBtn).focus();
  };

  Widget.prototype.renderBadge = function () {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 9 ? "9+" : this.number.format(this.unread);
    var label = this.t(this.open ? "launcher.close" : "launcher.open");
    if (this.unread) label += " (" + this.t("launcher.unread", { count: this.unread }) + ")";
    this.launcher.setAttribute("aria-label", label);
  };

  Widget.prototype.setNotice = function (text, kind) {
    this.notice.hidden = !text;
    this.notice.textContent = text || "";
    this.notice.className = "notice" + (kind ? " " + kind : "");
    this.noticeKind = text ? kind : "";
  };

  // announce tells screen readers about one new thing; only messages that
  // arrive live are fed here, never the backlog.
  Widget.prototype.announce = function (text) {
    this.live.appendChild(el("p", null, text));
    while (this.live.childNodes.length > 3) this.live.removeChild(this.live.firstChild);
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
        console.error("Parley: chat unavailable:", res.body.message || res.status);
        self.setNotice(self.t("error.unavailable"), "error");
        if (res.status >= 500 || res.status === 429) self.retry(function () { self.connect(); });
        return;
      }
      self.token = res.body.token;
      self.visitorId = res.body.visitor_id;
      localStorage.setItem(self.storeKey, self.token);
      self.openSocket();
    }).catch(function () { self.retry(function () { self.connect(); }); });
  };

  Widget.prototype.retry = function (fn) {
    if (this.closed) return;
    var wait = this.backoff * (0.75 + Math.random() / 2);
    this.backoff = Math.min(this.backoff * 2, 10000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(fn, wait);
  };

  Widget.prototype.openSocket = function () {
    var self = this;
    var ws = this.ws = new WebSocket(WS_BASE + "/ws/visitor?token=" + encodeURIComponent(this.token) + "&lang=" + encodeURIComponent(this.i18n.lang));
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      self.onFrame(f);
    };
    ws.onclose = function () {
      if (self.ws === ws) self.ws = null;
      if (!self.closed && !self.banned) {
        self.wrap.classList.add("offline-net");
        if (!self.notice.textContent || self.noticeKind === "net") self.setNotice(self.t("status.reconnecting"), "net");
        self.retry(function () { self.connect(); });
      }
    };
    ws.onopen = function () {
      self.backoff = 500;
      self.wrap.classList.remove("offline-net");
      if (self.noticeKind === "net") self.setNotice("");
    };
  };

  Widget.prototype.send = function (frame) {
    if (this.ws && this.ws.readyState === 1) { this.ws.send(JSON.stringify(frame)); return true; }
    return false;
  };

  Widget.prototype.onFrame = function (f) {
    switch (f.type) {
      case "hello": return this.onHello(f);
      case "message": return this.addMessage(f.message, false, true);
      case "messages":
        (f.messages || []).forEach(function (m) { this.addMessage(m, false, false); }, this);
        return;
      case "ack": return this.onAck(f);
      case "blocked": return this.onBlocked(f);
      case "typing":
        this.typingNode.hidden = !f.typing;
        this.typingNode.textContent = !f.typing ? "" : f.name ? this.t("typing.named", { name: f.name }) : this.t("typing.anonymous");
        return;
      case "receipt": return this.onReceipt(f);
      case "conversation": return this.onConversation(f.conversation);
      case "queue": return this.showQueue(f.position);
      case "message_hidden": return this.hideMessage(f.seq);
      case "message_restored": return this.addMessage(f.message, true, false);
      case "banned": return this.showBanned(f.until);
      case "error":
        if (f.code === "banned") this.showBanned();
        else if (ERROR_TEXTS[f.code]) this.setNotice(this.t(ERROR_TEXTS[f.code]), "error");
        return;
    }
  };

  Widget.prototype.showQueue = function (position) {
    if (!(position > 0)) return;
    this.setNotice(position === 1 ? this.t("queue.next") : this.t("queue.ahead", { count: position - 1 }), "info");
  };

  Widget.prototype.onHello = function (f) {
    var site = f.site || {};
    this.site = site;
    this.online = f.online;
    this.limits = f.limits || {};
    // The name keeps its own direction (bdi) while the title aligns with the widget's.
    this.title.textContent = "";
    this.title.appendChild(el("bdi", null, site.name || this.t("panel.title")));
    this.subtitle.textContent = f.online ? (site.reply_time ? this.t("status.reply_time", { time: site.reply_time }) : this.t("status.online")) : this.t("status.away");
    this.greeting.textContent = site.greeting || "";
    this.greeting.hidden = !site.greeting;
    if (site.color && /^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/.test(site.color)) {
      var color = site.color.length === 5 ? site.color.slice(0, 4) : site.color.length === 9 ? site.color.slice(0, 7) : site.color;
      this.wrap.style.setProperty("--parley-color", color);
      this.wrap.style.setProperty("--parley-on-color", readableOn(color));
    }
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
      var f = el("form", { class: "offline-form", "aria-label": this.t("offline.label") });
      f.appendChild(el("p", { dir: "auto" }, (this.site && this.site.offline_message) || this.t("offline.intro")));
      var name = this.field(f, this.t("form.name"), "text", "name", false, "name");
      var email = this.field(f, this.t("form.email"), "email", "email", true, "email");
      var text = this.field(f, this.t("form.message"), "textarea", "text", true);
      f.appendChild(el("button", { type: "submit", class: "send" }, this.t("offline.submit")));
      f.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var id = uid();
        var frame = { type: "offline_message", client_id: id, name: name.value, email: email.value, text: text.value };
        self.pending[id] = { frame: frame, node: self.renderOwn(id, text.value) };
        self.send(frame);
        self.offlineSent = true;
        self.form.textContent = "";
        var thanks = el("p", { class: "thanks", role: "status", tabindex: "-1" }, self.t("offline.thanks"));
        self.form.appendChild(thanks);
        thanks.focus();
      });
      this.form.appendChild(f);
      return;
    }
    var pre = this.site && this.site.prechat;
    if (pre && pre.enabled && !hasConv && !this.prechatDone) {
      this.composer.hidden = true;
      var pf = el("form", { class: "prechat", "aria-label": this.t("prechat.label") });
      pf.appendChild(el("p", null, this.t("prechat.intro")));
      var pname = this.field(pf, this.t("form.name"), "text", "name", false, "name");
      var pemail = this.field(pf, this.t("form.email"), "email", "email", false, "email");
      var extra = (pre.fields || []).map(function (fd) { return [fd.name, self.field(pf, fd.label || fd.name, "text", fd.name, fd.required)]; });
      pf.appendChild(el("button", { type: "submit", class: "send" }, this.t("prechat.submit")));
      pf.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var fields = {};
        extra.forEach(function (p) { if (p[1].value) fields[p[0]] = p[1].value; });
        self.send({ type: "prechat", name: pname.value, email: pemail.value, fields: fields });
        self.prechatDone = true;
        self.renderForms();
        self.input.focus();
      });
      this.form.appendChild(pf);
      return;
    }
    this.composer.hidden = !!this.banned;
  };

  // field adds a labelled input (or textarea) to a form.
  Widget.prototype.field = function (form, label, type, name, required, autocomplete) {
    var id = nextId("field");
    var l = el("label", { for: id, dir: "auto" }, label);
    if (required) l.appendChild(el("span", { class: "req" }, " (" + this.t("form.required") + ")"));
    form.appendChild(l);
    var input = type === "textarea" ? el("textarea", { id: id, name: name, rows: "3", dir: "auto" }) : el("input", { id: id, type: type, name: name, dir: "auto" });
    if (autocomplete) input.setAttribute("autocomplete", autocomplete);
    if (required) input.required = true;
    form.appendChild(input);
    return input;
  };

  Widget.prototype.onConversation = function (c) {
    if (!c) return;
    var changed = !this.conv || this.conv.id !== c.id;
    this.conv = c;
    if (changed) this.renderForms();
    if (c.routing === "assigned" && c.assignee) this.setNotice(c.assignee.name ? this.t("notice.joined", { name: c.assignee.name }) : "", "info");
    else if (c.routing === "queued" && c.queue_position) this.showQueue(c.queue_position);
    else if (c.routing !== "queued") this.setNotice("");
    this.renderReceipts();
    if (c.status === "resolved" && !c.csat) this.showCSAT();
    emit("conversation", c);
  };

  Widget.prototype.showCSAT = function () {
    var self = this;
    if (this.log.querySelector(".csat")) return;
    var qid = nextId("csat");
    var box = el("form", { class: "csat", "aria-labelledby": qid });
    box.appendChild(el("p", { id: qid }, this.t("csat.question")));
    var stars = el("fieldset", { class: "stars" });
    stars.appendChild(el("legend", { class: "sr-only" }, this.t("csat.rating")));
    var radios = [1, 2, 3, 4, 5].map(function (n) {
      var label = el("label", { class: "star" });
      var input = el("input", { type: "radio", name: qid + "-rating", value: String(n), class: "sr-only" });
      label.appendChild(input);
      label.appendChild(el("span", { class: "glyph", "aria-hidden": "true" }, "☆"));
      label.appendChild(el("span", { class: "sr-only" }, self.t("csat.star", { count: n })));
      input.addEventListener("change", function () {
        radios.forEach(function (r, i) {
          r.parentNode.classList.toggle("on", i < n);
          r.parentNode.querySelector(".glyph").textContent = i < n ? "★" : "☆";
        });
        error.hidden = true;
      });
      stars.appendChild(label);
      return input;
    });
    box.appendChild(stars);
    var cid = nextId("comment");
    box.appendChild(el("label", { for: cid }, this.t("csat.comment")));
    var comment = el("textarea", { id: cid, rows: "2", dir: "auto" });
    box.appendChild(comment);
    var error = el("p", { class: "csat-error", role: "alert", hidden: "" }, this.t("csat.pick"));
    box.appendChild(error);
    box.appendChild(el("button", { type: "submit", class: "send" }, this.t("csat.submit")));
    box.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var picked = radios.filter(function (r) { return r.checked; })[0];
      if (!picked) { error.hidden = false; radios[0].focus(); return; }
      self.send({ type: "csat", conversation_id: self.conv.id, rating: Number(picked.value), comment: comment.value });
      box.textContent = "";
      var thanks = el("p", { role: "status", tabindex: "-1" }, self.t("csat.thanks"));
      box.appendChild(thanks);
      thanks.focus();
    });
    this.log.appendChild(box);
    this.scroll();
  };

  Widget.prototype.showBanned = function (until) {
    this.banned = true;
    if (!this.composer) return;
    this.composer.hidden = true;
    this.form.textContent = "";
    var d = until ? new Date(until) : null;
    this.setNotice(d && !isNaN(d.getTime()) ? this.t("notice.banned_until", { date: this.dateFormat.format(d) }) : this.t("notice.banned"), "error");
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
    var bot = m.author && m.author.role === "bot";
    var node = el("div", { class: "msg " + (mine ? "mine" : "theirs") + (bot ? " bot" : "") });
    if (mine) node.appendChild(el("span", { class: "sr-only" }, this.t("message.you") + ": "));
    else if (m.author && m.author.name) {
      var who = el("span", { class: "who" });
      who.appendChild(el("bdi", null, m.author.name));
      if (bot) who.appendChild(document.createTextNode(" · " + this.t("message.bot")));
      node.appendChild(who);
    }
    if (m.text) node.appendChild(el("p", { class: "text", dir: "auto" }, m.text));
    (m.attachments || []).forEach(function (a) {
      var url = new URL(a.url, BASE).href;
      if (/^image\//.test(a.content_type)) {
        var link = el("a", { href: url, target: "_blank", rel: "noopener noreferrer" });
        link.appendChild(el("img", { src: url, alt: a.name, class: "preview" }));
        node.appendChild(link);
      } else {
        node.appendChild(el("a", { href: url, class: "file", download: a.name, rel: "noopener noreferrer", dir: "auto", "aria-label": this.t("message.file", { name: a.name }) }, a.name));
      }
    }, this);
    var meta = el("time", { class: "meta", datetime: m.created_at || "" }, this.fmtTime(m.created_at));
    node.appendChild(meta);
    return node;
  };

  // addMessage shows m; announce is true only for a message that arrived
  // live, so that screen readers hear new messages and never the backlog.
  Widget.prototype.addMessage = function (m, replace, announce) {
    if (!m) return;
    if (!this.conv) this.conv = { id: m.conversation_id };
    if (m.conversation_id !== this.conv.id) return;
    if (m.status === "hidden") return this.hideMessage(m.seq);
    var have = this.messages[m.seq];
    if (have && !replace) return;
    var node = this.messageNode(m);
    if (m.status === "blocked") {
      node.classList.add("blocked");
      node.appendChild(el("span", { class: "blocked-note" }, this.t("message.not_delivered")));
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
      if (announce) {
        var name = (m.author && m.author.name) || this.t("message.agent");
        if (m.text) this.announce(this.t("announce.message", { name: name, text: m.text }));
        (m.attachments || []).forEach(function (a) { this.announce(this.t("announce.file", { name: name, file: a.name })); }, this);
      }
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
    this.addMessage(m, !!have, false);
    if (f.redacted) this.setNotice(this.t("notice.redacted"), "info");
  };

  Widget.prototype.onBlocked = function (f) {
    var p = this.pending[f.client_id];
    delete this.pending[f.client_id];
    if (p && p.node) p.node.remove();
    var m = { id: f.message_id, conversation_id: f.conversation_id, seq: f.seq, author: { role: "visitor" }, text: p ? p.text : "", status: "blocked", created_at: new Date().toISOString() };
    if (!f.conversation_id) {
      // A blocked first message starts no conversation and is not stored:
      // only this tab shows it, after what is already there.
      var node = this.messageNode(m);
      node.classList.add("blocked");
      node.appendChild(el("span", { class: "blocked-note" }, this.t("message.not_delivered")));
      this.insertInOrder(node, Infinity);
    } else {
      this.addMessage(m, true, false);
    }
    // The server words the reason in this widget's language.
    this.setNotice(f.reason || this.t("blocked.rules"), "error");
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
    var key = (this.conv.agent_read_seq || 0) >= lastMine.seq ? "receipt.read" : (this.delivered || 0) >= lastMine.seq ? "receipt.delivered" : "receipt.sent";
    this.messages[lastMine.seq].node.appendChild(el("span", { class: "receipt" }, this.t(key)));
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
    var max = this.limits.max_attachment_bytes || 10 * 1024 * 1024;
    if (file.size > max) { this.setNotice(this.t("error.file_too_large", { count: Math.floor(max / 1048576) }), "error"); return; }
    var body = new FormData();
    body.append("file", file, file.name);
    fetch(BASE + "/api/chat/visitor/attachments", { method: "POST", headers: { Authorization: "Bearer " + this.token }, body: body })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) {
          console.error("Parley: upload refused:", res.body.message);
          self.setNotice(self.t("error.upload"), "error");
          return;
        }
        self.post("", [res.body]);
      })
      .catch(function () { self.setNotice(self.t("error.upload_network"), "error"); });
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
    if (this.host) this.host.remove();
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
    open: function () { if (state && state.panel) state.setOpen(true); },
    close: function () { if (state && state.panel) state.setOpen(false); },
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
    var lang = script.getAttribute("data-language") || "";
    var start = function () { window.Parley.boot({ siteKey: key, language: lang }); };
    if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  }
})();
