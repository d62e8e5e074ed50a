// The agent console: inbox with filters, many conversations open at once
// with unread counts, live messages over /ws/agent (docs/protocol.md),
// assignment, transfer, notes, canned replies, status changes, visitor
// context and presence. All conversation text is rendered with textContent.
import {h, replace, toast, formDialog, fmtTime, fmtDateTime, fmtRelative} from '../dom.js';
import {get, post, api, query, LiveSocket} from '../api.js';
import {notificationsState, askNotifications} from '../notify.js';
import {loadPreferences, sound, desktop, setUnread, mentions, editPreferences} from '../alerts.js';

const STATUS_LABEL = {open: 'Open', pending: 'Pending', resolved: 'Resolved'};
const MAX_CHARS = 4000;

function visitorName(c) {
  return (c.visitor && (c.visitor.name || c.visitor.email)) || 'Visitor ' + (c.visitor?.id || c.id).slice(-4);
}

export async function mount(root, ctx) {
  const me = ctx.user;
  loadPreferences();
  const state = {
    scope: ctx.params.get('scope') || 'mine',
    status: ctx.params.get('status') || 'open',
    convs: new Map(),        // id -> summary
    threads: new Map(),      // id -> {messages: Map(seq -> msg), pending: Map(client_id -> msg), lastSeq, unread, typing, visitorRead, detail}
    tabs: [],                // open conversation ids, in order
    active: null,
    agents: new Map(),
    teams: [],
    canned: [],
    presence: 'online',
    noteMode: false,
    connected: false,
  };
  let clientSeq = 0;
  const newClientId = () => `a-${me.id.slice(0, 8)}-${Date.now().toString(36)}-${(++clientSeq).toString(36)}`;

  // Layout.
  const presenceSel = h('select', {id: 'presence', 'aria-label': 'Your presence'},
    ['online', 'away', 'offline'].map((p) => h('option', {value: p}, p[0].toUpperCase() + p.slice(1))));
  const liveDot = h('span', {class: 'live-dot', title: 'Connection'});
  const notifBtn = h('button', {type: 'button', class: 'small', id: 'enable-notifications', hidden: notificationsState() !== 'default'}, 'Enable notifications');
  const settingsBtn = h('button', {type: 'button', class: 'small', id: 'notification-settings-open', onclick: () => editPreferences(me)}, 'Notification settings');
  const scopeSeg = h('div', {class: 'seg', role: 'group', 'aria-label': 'Whose conversations'},
    ['unassigned', 'mine', 'all'].map((s) => h('button', {type: 'button', 'data-scope': s, 'aria-pressed': String(state.scope === s)}, s[0].toUpperCase() + s.slice(1))));
  const statusSeg = h('div', {class: 'seg', role: 'group', 'aria-label': 'Status'},
    ['open', 'pending', 'resolved'].map((s) => h('button', {type: 'button', 'data-status': s, 'aria-pressed': String(state.status === s)}, STATUS_LABEL[s])));
  const list = h('ul', {class: 'conv-list', id: 'conv-list', 'aria-label': 'Conversations'});
  const tabs = h('div', {class: 'tabs', role: 'tablist', id: 'conv-tabs', 'aria-label': 'Open conversations'});
  const head = h('div', {class: 'conv-head', id: 'conv-head'});
  const messages = h('div', {class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', tabindex: 0});
  const typing = h('div', {class: 'typing', id: 'typing', 'aria-live': 'polite'});
  const input = h('textarea', {id: 'composer-input', 'aria-label': 'Message', maxlength: MAX_CHARS, placeholder: 'Type a reply… (/ for canned replies, Enter to send, Shift+Enter for a new line)'});
  const cannedMenu = h('ul', {class: 'canned-menu', id: 'canned-menu', role: 'listbox', hidden: true});
  const noteToggle = h('input', {type: 'checkbox', id: 'note-mode'});
  const fileInput = h('input', {type: 'file', id: 'attach', multiple: true, 'aria-label': 'Attach files'});
  const sendBtn = h('button', {type: 'submit', class: 'primary', id: 'send'}, 'Send');
  const attachList = h('div', {class: 'row muted', id: 'attach-list'});
  const composer = h('form', {class: 'composer', id: 'composer'}, cannedMenu, input, attachList,
    h('div', {class: 'row'}, h('label', {class: 'inline-label', for: 'note-mode'}, noteToggle, 'Private note'),
      fileInput, h('span', {class: 'spacer'}), sendBtn));
  const contextPanel = h('section', {class: 'context', id: 'context', 'aria-label': 'Visitor'});
  const convSection = h('section', {class: 'conversation', 'aria-label': 'Conversation'}, tabs, head, messages, typing, composer);
  const consoleEl = h('div', {class: 'console'},
    h('section', {class: 'inbox', 'aria-label': 'Inbox'},
      h('div', {class: 'inbox-filters'}, scopeSeg, statusSeg), list),
    convSection, contextPanel);
  replace(root,
    h('div', {class: 'row', style: {marginBottom: '10px'}},
      h('h1', {id: 'page-title', style: {margin: 0}}, 'Inbox'), liveDot,
      h('span', {class: 'spacer'}), notifBtn, settingsBtn,
      h('label', {for: 'presence', class: 'inline-label'}, 'Status'), presenceSel),
    consoleEl);

  // Live socket.
  const sock = new LiveSocket('/ws/agent', {
    onFrame: handleFrame,
    onStatus: (s) => {
      state.connected = s === 'open';
      liveDot.classList.toggle('open', state.connected);
      liveDot.title = state.connected ? 'Connected' : 'Reconnecting…';
    },
    onOpen: () => {
      sock.send({type: 'inbox', scope: state.scope === 'all' ? 'all' : 'mine'});
      for (const id of state.tabs) {
        const th = thread(id);
        sock.send({type: 'subscribe', ref: `s-${id}`, conversation_id: id, after_seq: th.lastSeq});
        for (const m of th.pending.values()) {
          sock.send({type: 'send', ref: m.client_id, client_id: m.client_id, conversation_id: id, kind: m.kind, text: m.text, attachments: m.attachmentIds || []});
        }
      }
    },
  });

  function thread(id) {
    if (!state.threads.has(id)) {
      state.threads.set(id, {messages: new Map(), pending: new Map(), lastSeq: 0, unread: 0, typing: null, visitorRead: 0, detail: null});
    }
    return state.threads.get(id);
  }

  function initialUnread(c) {
    if (!c.last_message || c.last_message.role !== 'visitor') return 0;
    return Math.max(0, (c.last_seq || 0) - (c.agent_read_seq || 0));
  }

  function matches(c) {
    if (c.status !== state.status) return false;
    if (state.scope === 'unassigned') return !c.assignee;
    if (state.scope === 'mine') return c.assignee && c.assignee.id === me.id;
    return true;
  }

  async function loadInbox() {
    try {
      const {conversations} = await get('/api/chat/conversations' + query({status: state.status, scope: state.scope, limit: 200}));
      for (const c of conversations) upsert(c, false);
      renderInbox(conversations.map((c) => c.id));
    } catch (err) {
      replace(list, h('li', {class: 'empty'}, `Inbox failed to load: ${err.message}`));
    }
  }

  // upsert stores a summary; it returns whether it is new to this page.
  function upsert(c, live) {
    const prev = state.convs.get(c.id);
    state.convs.set(c.id, c);
    const th = thread(c.id);
    th.visitorRead = Math.max(th.visitorRead, c.visitor_read_seq || 0);
    if (!prev) {
      th.unread = initialUnread(c);
    } else if (live && (c.last_seq || 0) > (prev.last_seq || 0) && c.last_message?.role === 'visitor' && !isSubscribed(c.id)) {
      th.unread += (c.last_seq || 0) - (prev.last_seq || 0);
    }
    return !prev;
  }

  function isSubscribed(id) { return state.tabs.includes(id); }

  function inboxIds() {
    return [...state.convs.values()].filter(matches)
      .sort((a, b) => (b.updated_at || '').localeCompare(a.updated_at || ''))
      .map((c) => c.id);
  }

  function renderInbox(ids = inboxIds()) {
    const shown = ids.map((id) => state.convs.get(id)).filter((c) => c && matches(c));
    if (shown.length === 0) {
      replace(list, h('li', {class: 'empty'}, state.scope === 'unassigned' ? 'Nobody is waiting.' : 'No conversations here.'));
      return;
    }
    replace(list, shown.map((c) => {
      const th = thread(c.id);
      const label = visitorName(c);
      return h('li', {},
        h('button', {type: 'button', 'data-id': c.id, 'aria-current': String(state.active === c.id), onclick: () => openConversation(c.id)},
          h('span', {class: 'who'}, label, th.unread ? h('span', {class: 'badge', 'data-unread': th.unread}, String(th.unread), h('span', {class: 'sr-only'}, ' unread')) : null,
            h('span', {class: 'spacer'}), h('span', {class: 'muted'}, fmtRelative(c.updated_at))),
          h('div', {class: 'preview'}, c.last_message ? c.last_message.preview : 'No messages yet'),
          h('div', {class: 'muted'}, c.assignee ? `→ ${c.assignee.name}` : (c.routing === 'queued' ? `Waiting · #${c.queue_position}` : c.routing === 'bot' ? 'With the bot' : 'Unassigned'))));
    }));
  }

  function renderTabs() {
    replace(tabs, state.tabs.map((id) => {
      const c = state.convs.get(id);
      const th = thread(id);
      return h('button', {type: 'button', role: 'tab', 'aria-selected': String(state.active === id), 'data-id': id,
        onclick: () => openConversation(id)}, c ? visitorName(c) : id.slice(-6),
        th.unread ? h('span', {class: 'badge'}, ` ${th.unread}`) : null);
    }));
    setUnread([...state.threads.values()].reduce((n, th) => n + th.unread, 0));
  }

  async function openConversation(id) {
    if (!isSubscribed(id)) {
      state.tabs.push(id);
      sock.send({type: 'subscribe', ref: `s-${id}`, conversation_id: id, after_seq: thread(id).lastSeq});
    }
    state.active = id;
    thread(id).unread = 0;
    renderAll();
    markRead(id);
    input.focus();
    loadDetail(id);
  }

  function closeTab(id) {
    state.tabs = state.tabs.filter((x) => x !== id);
    const c = state.convs.get(id);
    if (!c || !c.assignee || c.assignee.id !== me.id) sock.send({type: 'unsubscribe', conversation_id: id});
    if (state.active === id) state.active = state.tabs[state.tabs.length - 1] || null;
    renderAll();
  }

  async function loadDetail(id) {
    try {
      const d = await get(`/api/chat/conversations/${encodeURIComponent(id)}`);
      thread(id).detail = d;
      if (d.conversation) upsert(d.conversation, false);
      if (state.active === id) { renderContext(); renderHead(); }
    } catch (err) {
      if (state.active === id) replace(contextPanel, h('p', {class: 'error'}, `Visitor details failed to load: ${err.message}`));
    }
  }

  function markRead(id) {
    const th = thread(id);
    if (th.lastSeq > 0 && document.visibilityState === 'visible') {
      sock.send({type: 'read', conversation_id: id, up_to_seq: th.lastSeq});
    }
  }

  function renderHead() {
    const id = state.active;
    if (!id) {
      replace(head, h('span', {class: 'muted'}, 'Pick a conversation from the inbox.'));
      return;
    }
    const c = state.convs.get(id) || {id, status: 'open'};
    const buttons = [];
    if (!c.assignee || c.assignee.id !== me.id) buttons.push(h('button', {type: 'button', id: 'assign-me', onclick: () => assign(id, me.id)}, 'Assign to me'));
    buttons.push(h('button', {type: 'button', id: 'transfer', onclick: () => transfer(id)}, 'Transfer'));
    if (c.status !== 'resolved') buttons.push(h('button', {type: 'button', id: 'resolve', class: 'primary', onclick: () => setStatus(id, 'resolved')}, 'Resolve'));
    if (c.status === 'open') buttons.push(h('button', {type: 'button', id: 'pending', onclick: () => setStatus(id, 'pending')}, 'Set pending'));
    if (c.status !== 'open') buttons.push(h('button', {type: 'button', id: 'reopen', onclick: () => setStatus(id, 'open')}, 'Reopen'));
    replace(head,
      h('strong', {}, visitorName(c)),
      h('span', {class: ['pill', c.status === 'resolved' ? 'ok' : c.status === 'pending' ? 'warn' : '']}, STATUS_LABEL[c.status] || c.status),
      h('span', {class: 'muted'}, c.assignee ? `Assigned to ${c.assignee.name}` : 'Unassigned'),
      h('span', {class: 'spacer'}), buttons,
      h('button', {type: 'button', class: 'small', 'aria-controls': 'context', title: 'Visitor details', onclick: () => consoleEl.classList.toggle('show-context')}, 'Info'),
      h('button', {type: 'button', class: 'small', 'aria-label': 'Close conversation tab', onclick: () => closeTab(id)}, '✕'));
  }

  function messageEl(m, pending = false) {
    const role = m.author?.role || 'system';
    const mine = role === 'agent' && m.author?.id === me.id;
    const cls = ['msg', role, m.kind === 'note' ? 'note' : '', mine ? 'mine' : '', m.status === 'hidden' || m.status === 'blocked' ? 'hidden-msg' : ''];
    let body;
    if (m.status === 'hidden') body = 'Message removed by a moderator.';
    else if (m.status === 'blocked') body = m.text ? m.text : 'Message blocked by moderation (not delivered).';
    else body = m.text;
    const who = m.kind === 'note' ? `Note · ${m.author?.name || ''}` : (m.author?.name || role);
    const read = mine && m.seq && m.seq <= thread(m.conversation_id).visitorRead ? ' · Read' : '';
    return h('div', {class: cls, 'data-seq': m.seq || '', 'data-id': m.id || '', 'data-client-id': m.client_id || ''},
      body,
      m.status === 'hidden' ? null : (m.attachments || []).map((a) => a.content_type?.startsWith('image/')
        ? h('a', {href: a.url, target: '_blank', rel: 'noopener'}, h('img', {src: a.url, alt: a.name}))
        : h('div', {}, h('a', {href: a.url, download: a.name, rel: 'noopener'}, `📎 ${a.name}`))),
      h('span', {class: 'meta'}, `${who} · ${pending ? (m.failed ? 'not sent: ' + m.failed : 'sending…') : fmtTime(m.created_at)}${read}`));
  }

  function renderMessages() {
    const id = state.active;
    if (!id) {
      replace(messages, h('p', {class: 'empty'}, 'No conversation open.'));
      return;
    }
    const th = thread(id);
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    const sorted = [...th.messages.values()].sort((a, b) => a.seq - b.seq);
    replace(messages, sorted.length === 0 && th.pending.size === 0 ? h('p', {class: 'muted'}, 'No messages yet.') : null,
      sorted.map((m) => messageEl(m)), [...th.pending.values()].map((m) => messageEl(m, true)));
    if (atBottom || sorted.length < 30) messages.scrollTop = messages.scrollHeight;
    typing.textContent = th.typing ? `${th.typing} is typing…` : '';
  }

  function renderContext() {
    const id = state.active;
    const d = id && thread(id).detail;
    if (!d) {
      replace(contextPanel, h('p', {class: 'muted'}, id ? 'Loading visitor…' : ''));
      return;
    }
    const v = d.visitor || {};
    const rows = [
      ['Name', v.name], ['Email', v.email], ['Verified', v.verified ? 'yes' : 'no'],
      ['Page', v.page_url], ['Title', v.page_title], ['Referrer', v.referrer], ['Browser', v.browser],
      ['Local time', v.local_time ? `${fmtTime(v.local_time, v.timezone || undefined)} (${v.timezone || '?'})` : ''],
      ['Language', v.locale], ['First seen', v.created_at ? fmtDateTime(v.created_at) : ''],
      ...Object.entries(v.fields || {}),
    ].filter(([, val]) => val);
    replace(contextPanel,
      h('h2', {}, 'Visitor'),
      h('dl', {id: 'visitor-details'}, rows.map(([k, val]) => [h('dt', {}, k), h('dd', {}, String(val))])),
      h('h2', {}, 'Past conversations'),
      (d.past_conversations || []).length === 0 ? h('p', {class: 'muted'}, 'None.') :
        h('ul', {}, d.past_conversations.map((p) => h('li', {},
          h('a', {href: `/app/conversations/${encodeURIComponent(p.id)}`}, fmtDateTime(p.created_at)),
          ` · ${STATUS_LABEL[p.status] || p.status}`,
          p.last_message ? h('div', {class: 'muted preview'}, p.last_message.preview) : null))));
  }

  function renderAll() {
    renderInbox();
    renderTabs();
    renderHead();
    renderMessages();
    renderContext();
    composer.hidden = !state.active;
  }

  function addMessages(id, msgs) {
    const th = thread(id);
    for (const m of msgs) {
      th.messages.set(m.seq, m);
      th.lastSeq = Math.max(th.lastSeq, m.seq);
      if (m.client_id) th.pending.delete(m.client_id);
    }
  }

  function handleFrame(f) {
    switch (f.type) {
      case 'hello':
        state.presence = f.presence || 'online';
        presenceSel.value = state.presence;
        for (const a of f.agents || []) state.agents.set(a.id, a);
        break;
      case 'presence':
        if (f.agent) {
          state.agents.set(f.agent.id, f.agent);
          if (f.agent.id === me.id) { state.presence = f.agent.status; presenceSel.value = f.agent.status; }
        }
        break;
      case 'conversation': {
        const c = f.conversation;
        const prev = state.convs.get(c.id);
        const isNew = upsert(c, true);
        const th = thread(c.id);
        if (isNew && c.status === 'open' && (!c.assignee || c.assignee.id === me.id)) {
          sound('conversation');
          desktop('conversation', 'New conversation', `${visitorName(c)}: ${c.last_message?.preview || ''}`, () => openConversation(c.id));
        } else if (prev && !isSubscribed(c.id) && (c.last_seq || 0) > (prev.last_seq || 0) && c.last_message?.role === 'visitor' && matches(c)) {
          sound('message');
          desktop('message', visitorName(c), c.last_message.preview, () => openConversation(c.id));
        }
        if (prev?.assignee && prev.assignee.id !== me.id && c.assignee?.id === me.id) {
          sound('conversation');
          desktop('transfer', 'Conversation transferred to you', `${visitorName(c)}${prev.assignee.name ? ` (from ${prev.assignee.name})` : ''}`, () => openConversation(c.id));
        }
        if (c.assignee && c.assignee.id === me.id && !isSubscribed(c.id) && c.status !== 'resolved' && (!prev || !prev.assignee || prev.assignee.id !== me.id)) {
          // Newly assigned to me: open it alongside the others.
          state.tabs.push(c.id);
          sock.send({type: 'subscribe', ref: `s-${c.id}`, conversation_id: c.id, after_seq: th.lastSeq});
          if (!state.active) state.active = c.id;
        }
        renderInbox();
        renderTabs();
        if (state.active === c.id) renderHead();
        break;
      }
      case 'message': {
        const m = f.message;
        const id = m.conversation_id;
        addMessages(id, [m]);
        const th = thread(id);
        const fromVisitor = m.author?.role === 'visitor';
        const c = state.convs.get(id);
        if (c) {
          state.convs.set(id, {...c, last_seq: Math.max(c.last_seq || 0, m.seq), updated_at: m.created_at,
            last_message: {seq: m.seq, role: m.author?.role, preview: m.status === 'hidden' ? '' : (m.text || '').slice(0, 120), at: m.created_at}});
        }
        if (fromVisitor) {
          th.typing = null;
          const seen = state.active === id && document.visibilityState === 'visible' && document.hasFocus();
          if (state.active === id && document.visibilityState === 'visible') markRead(id);
          else th.unread++;
          if (!seen) {
            sound('message');
            desktop('message', c ? visitorName(c) : 'New message', m.text, () => openConversation(id));
          }
        } else if (m.kind === 'note' && m.author?.id !== me.id && mentions(m.text, me)) {
          sound('message');
          desktop('mention', `${m.author?.name || 'A colleague'} mentioned you`, m.text, () => openConversation(id));
        }
        if (state.active === id) renderMessages();
        renderInbox();
        renderTabs();
        break;
      }
      case 'messages':
        addMessages(f.conversation_id, f.messages || []);
        if (state.active === f.conversation_id) { renderMessages(); markRead(f.conversation_id); }
        break;
      case 'ack': {
        const th = thread(f.conversation_id);
        const p = th.pending.get(f.client_id);
        if (p) {
          th.pending.delete(f.client_id);
          if (!th.messages.has(f.seq)) {
            th.messages.set(f.seq, {...p, id: f.message_id, seq: f.seq, created_at: f.created_at, text: f.text ?? p.text, status: 'visible'});
          }
          th.lastSeq = Math.max(th.lastSeq, f.seq);
        }
        if (state.active === f.conversation_id) renderMessages();
        break;
      }
      case 'blocked': {
        const th = thread(f.conversation_id);
        const p = th.pending.get(f.client_id);
        th.pending.delete(f.client_id);
        if (p) th.messages.set(f.seq, {...p, id: f.message_id, seq: f.seq, status: 'blocked', text: p.text, created_at: new Date().toISOString()});
        toast(f.reason || 'Message blocked by moderation.', 'error');
        if (state.active === f.conversation_id) renderMessages();
        break;
      }
      case 'typing': {
        if (f.role === 'agent' && f.name === me.name) break;
        const th = thread(f.conversation_id);
        th.typing = f.typing ? (f.name || f.role) : null;
        clearTimeout(th.typingTimer);
        if (f.typing) th.typingTimer = setTimeout(() => { th.typing = null; if (state.active === f.conversation_id) renderMessages(); }, 6000);
        if (state.active === f.conversation_id) typing.textContent = th.typing ? `${th.typing} is typing…` : '';
        break;
      }
      case 'receipt':
        if (f.role === 'visitor' && f.kind === 'read') {
          const th = thread(f.conversation_id);
          th.visitorRead = Math.max(th.visitorRead, f.up_to_seq);
          if (state.active === f.conversation_id) renderMessages();
        }
        break;
      case 'message_hidden': {
        const th = thread(f.conversation_id);
        const m = th.messages.get(f.seq) || [...th.messages.values()].find((x) => x.id === f.message_id);
        if (m) {
          th.messages.set(m.seq, {...m, status: 'hidden', text: '', attachments: []});
          if (state.active === f.conversation_id) renderMessages();
        }
        const c = state.convs.get(f.conversation_id);
        if (c && c.last_message && c.last_message.seq === f.seq) {
          state.convs.set(c.id, {...c, last_message: {...c.last_message, preview: ''}});
          renderInbox();
        }
        break;
      }
      case 'message_restored':
        addMessages(f.message.conversation_id, [f.message]);
        if (state.active === f.message.conversation_id) renderMessages();
        break;
      case 'error': {
        for (const th of state.threads.values()) {
          const p = f.ref && th.pending.get(f.ref);
          if (p) { p.failed = f.message; if (state.active === p.conversation_id) renderMessages(); }
        }
        if (!(f.ref || '').startsWith('s-') || f.code !== 'not_found') toast(`${f.code}: ${f.message}`, 'error');
        break;
      }
      default:
        break;
    }
  }

  // Actions.
  async function assign(id, agentId) {
    try {
      const c = await post(`/api/chat/conversations/${encodeURIComponent(id)}/assign`, {agent_id: agentId});
      upsert(c, false);
      renderAll();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function setStatus(id, status) {
    try {
      const c = await post(`/api/chat/conversations/${encodeURIComponent(id)}/status`, {status});
      upsert(c, false);
      renderAll();
      toast(`Conversation ${STATUS_LABEL[status].toLowerCase()}`, 'ok');
    } catch (err) { toast(err.message, 'error'); }
  }

  async function transfer(id) {
    const agents = [...state.agents.values()].filter((a) => a.id !== me.id);
    const options = [{value: '', label: 'Choose…'},
      ...agents.map((a) => ({value: 'agent:' + a.id, label: `${a.name} (${a.status}, ${a.load}/${a.limit})`})),
      ...state.teams.map((t) => ({value: 'team:' + t.id, label: `Team ${t.name}`}))];
    const r = await formDialog({title: 'Transfer conversation', submit: 'Transfer', fields: [
      {name: 'to', label: 'To', type: 'select', options, required: true},
      {name: 'note', label: 'Note for the next person (private)', type: 'textarea', maxlength: MAX_CHARS},
    ]});
    if (!r || !r.to) return;
    const [kind, target] = r.to.split(':');
    try {
      const c = await post(`/api/chat/conversations/${encodeURIComponent(id)}/transfer`,
        kind === 'agent' ? {to_agent_id: target, note: r.note} : {to_team_id: target, note: r.note});
      upsert(c, false);
      renderAll();
      toast('Transferred', 'ok');
    } catch (err) { toast(err.message, 'error'); }
  }

  // Composer: canned replies with /shortcut, notes, attachments, typing.
  let cannedMatches = [];
  let cannedIndex = 0;
  let typingSent = 0;
  let typingStop = null;
  let uploads = [];

  function updateCanned() {
    const m = /^\/([a-z0-9_-]*)$/i.exec(input.value);
    if (!m || state.canned.length === 0) { cannedMenu.hidden = true; cannedMatches = []; return; }
    const c = state.active && state.convs.get(state.active);
    cannedMatches = state.canned.filter((x) => x.shortcut.startsWith(m[1].toLowerCase()) && (!x.site_id || !c || x.site_id === c.site_id)).slice(0, 8);
    cannedIndex = Math.min(cannedIndex, Math.max(0, cannedMatches.length - 1));
    cannedMenu.hidden = cannedMatches.length === 0;
    replace(cannedMenu, cannedMatches.map((x, i) => h('li', {role: 'option', 'aria-selected': String(i === cannedIndex),
      onmousedown: (e) => { e.preventDefault(); pickCanned(i); }},
      h('strong', {}, '/' + x.shortcut), ' ', h('span', {class: 'muted'}, x.text.slice(0, 80)))));
  }

  function pickCanned(i) {
    const x = cannedMatches[i];
    if (!x) return;
    input.value = x.text;
    cannedMenu.hidden = true;
    cannedMatches = [];
    input.focus();
  }

  function sendTyping(on) {
    if (!state.active) return;
    sock.send({type: 'typing', conversation_id: state.active, typing: on});
  }

  input.addEventListener('input', () => {
    updateCanned();
    if (state.noteMode) return;
    const now = Date.now();
    if (now - typingSent > 2500) { typingSent = now; sendTyping(true); }
    clearTimeout(typingStop);
    typingStop = setTimeout(() => { typingSent = 0; sendTyping(false); }, 3000);
  });
  input.addEventListener('keydown', (e) => {
    if (!cannedMenu.hidden && cannedMatches.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        cannedIndex = (cannedIndex + (e.key === 'ArrowDown' ? 1 : cannedMatches.length - 1)) % cannedMatches.length;
        updateCanned();
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); pickCanned(cannedIndex); return; }
      if (e.key === 'Escape') { cannedMenu.hidden = true; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      composer.requestSubmit();
    }
  });
  noteToggle.addEventListener('change', () => {
    state.noteMode = noteToggle.checked;
    composer.classList.toggle('note-mode', state.noteMode);
    sendBtn.textContent = state.noteMode ? 'Add note' : 'Send';
  });
  fileInput.addEventListener('change', async () => {
    for (const file of fileInput.files) {
      const fd = new FormData();
      fd.append('file', file);
      try {
        const a = await api('POST', '/api/chat/attachments', fd);
        uploads.push(a);
      } catch (err) {
        toast(`${file.name}: ${err.message}`, 'error');
      }
    }
    fileInput.value = '';
    replace(attachList, uploads.map((a) => h('span', {class: 'pill'}, a.name)));
  });
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = state.active;
    const text = input.value.trim();
    if (!id || (!text && uploads.length === 0)) return;
    if (text.length > MAX_CHARS) { toast(`Message of ${text.length} characters exceeds ${MAX_CHARS}`, 'error'); return; }
    const clientId = newClientId();
    const kind = state.noteMode ? 'note' : 'text';
    const m = {client_id: clientId, conversation_id: id, kind, text, author: {role: 'agent', id: me.id, name: me.name},
      attachments: uploads, attachmentIds: uploads.map((a) => a.id)};
    thread(id).pending.set(clientId, m);
    sock.send({type: 'send', ref: clientId, client_id: clientId, conversation_id: id, kind, text, attachments: m.attachmentIds});
    input.value = '';
    uploads = [];
    replace(attachList);
    clearTimeout(typingStop);
    if (typingSent) { typingSent = 0; sendTyping(false); }
    renderMessages();
  });

  // Filters and presence.
  scopeSeg.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-scope]');
    if (!b) return;
    const wasAll = state.scope === 'all';
    state.scope = b.dataset.scope;
    for (const x of scopeSeg.children) x.setAttribute('aria-pressed', String(x === b));
    if (wasAll !== (state.scope === 'all')) sock.send({type: 'inbox', scope: state.scope === 'all' ? 'all' : 'mine'});
    ctx.setQuery({scope: state.scope, status: state.status});
    loadInbox();
  });
  statusSeg.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-status]');
    if (!b) return;
    state.status = b.dataset.status;
    for (const x of statusSeg.children) x.setAttribute('aria-pressed', String(x === b));
    ctx.setQuery({scope: state.scope, status: state.status});
    loadInbox();
  });
  presenceSel.addEventListener('change', () => {
    state.presence = presenceSel.value;
    sock.send({type: 'presence', status: state.presence});
    toast(`You are ${state.presence}`, 'ok');
  });
  notifBtn.addEventListener('click', async () => {
    const r = await askNotifications();
    notifBtn.hidden = r !== 'default';
  });
  const onVisible = () => { if (state.active && document.visibilityState === 'visible') { thread(state.active).unread = 0; markRead(state.active); renderInbox(); renderTabs(); } };
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('focus', onVisible);

  // Reference data: agents, teams, canned replies.
  get('/api/chat/agents').then((r) => { for (const a of r.agents || []) state.agents.set(a.id, a); }).catch(() => {});
  get('/api/auth/staff').then((r) => { state.teams = r.teams || []; }).catch(() => {});
  get('/api/chat/canned').then((r) => { state.canned = (r.canned || []).map((x) => ({...x, shortcut: x.shortcut.toLowerCase()})); }).catch(() => {});

  renderAll();
  await loadInbox();
  const open = ctx.params.get('open');
  if (open) openConversation(open);

  return () => {
    sock.close();
    setUnread(0);
    document.removeEventListener('visibilitychange', onVisible);
    window.removeEventListener('focus', onVisible);
  };
}
