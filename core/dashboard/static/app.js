// The dashboard: one page per hash route, built with DOM calls only (text
// goes through textContent, never innerHTML, so data cannot inject markup).
import * as api from "./api.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const statusLine = document.getElementById("status");

// h builds an element: h("button", {type: "button", onclick}, "text", child…).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text) { statusLine.textContent = text; }

function fail(e) {
  const f = e && e.problem && e.problem.field ? ` (${e.problem.field})` : "";
  say(`Error: ${e.message}${f}`);
  if (e.status === 401) { api.forget(); location.hash = "#/login"; }
}

// run wraps an action: errors show in the status line.
function run(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try { await fn(ev); } catch (e) { fail(e); }
  };
}

const enc = encodeURIComponent;
const when = (v) => {
  if (!v) return "";
  const d = typeof v === "number" ? new Date(v * 1000) : new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString();
};
const cut = (s, n = 300) => (s && s.length > n ? s.slice(0, n) + "…" : s || "");

function table(caption, heads, rows) {
  // A scrolling region: focusable, so keyboard users can scroll it.
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", { class: "muted" }, caption),
      h("thead", {}, h("tr", {}, heads.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

// Each page gets an AbortController; leaving the page ends its streams.
let pageAbort = new AbortController();

function page(title, ...content) {
  document.title = `${title} · Wildcat`;
  main.replaceChildren(h("h1", {}, title), ...content);
  for (const a of nav.querySelectorAll("a")) {
    if (location.hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---- login ----------------------------------------------------------------

function loginPage() {
  nav.hidden = true;
  const input = h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true });
  const err = h("p", { id: "login-error", class: "bad", role: "alert" });
  page("Sign in",
    h("p", {}, "Paste an API key (the admin key, or one with the scopes you need). It is kept in this tab's session storage only."),
    h("form", { class: "inline", onsubmit: async (ev) => {
      ev.preventDefault();
      api.setKey(input.value.trim());
      try {
        await api.get("/v1/accounts");
        location.hash = "#/accounts";
      } catch (e) {
        api.forget();
        err.textContent = e.message;
      }
    } }, h("label", { for: "key" }, "API key", input), h("button", { type: "submit" }, "Sign in")),
    err);
  input.focus();
  main.dataset.ready = "#/login";
}

// ---- accounts ---------------------------------------------------------------

async function accountsPage() {
  const tbody = h("tbody");
  const pairing = h("section", { id: "pairing", "aria-live": "polite" });
  const id = h("input", { id: "new-id", name: "id", required: true, pattern: "[A-Za-z0-9_.\\-]+" });
  const name = h("input", { id: "new-name", name: "name" });
  const driver = h("select", { id: "new-driver", name: "driver" }, h("option", { value: "whatsapp" }, "whatsapp"), h("option", { value: "sim" }, "sim"));
  page("Accounts",
    h("form", { class: "inline", "aria-label": "Create an account", onsubmit: run(async () => {
      const a = await api.post("/v1/accounts", { id: id.value.trim(), name: name.value.trim() || undefined, driver: driver.value });
      say(`Account ${a.id} created`);
      id.value = ""; name.value = "";
      await load();
    }) },
      h("label", { for: "new-id" }, "Account id", id),
      h("label", { for: "new-name" }, "Name", name),
      h("label", { for: "new-driver" }, "Driver", driver),
      h("button", { type: "submit" }, "Create")),
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Accounts" }, h("table", { id: "accounts" },
      h("caption", { class: "muted" }, "Accounts"),
      h("thead", {}, h("tr", {}, ["Account", "State", "Reason", "Since", "Number", "Actions"].map((x) => h("th", { scope: "col" }, x)))),
      tbody)),
    pairing);

  let pairingFor = "";
  async function showQR(acct) {
    pairingFor = acct;
    const img = h("img", { id: "qr-img", alt: `QR code to pair ${acct}: scan it with WhatsApp on the phone (Linked devices)` });
    const code = h("code", { id: "qr-code" });
    const phone = h("input", { id: "pair-phone", name: "phone", inputmode: "tel", placeholder: "+15551234567" });
    const pcode = h("output", { id: "pair-code", for: "pair-phone" });
    pairing.replaceChildren(h("div", { class: "card qr" },
      h("h2", {}, `Pair ${acct}`),
      h("p", {}, "Scan the code with WhatsApp → Linked devices. It changes every few seconds; this picture follows."),
      img,
      h("details", {}, h("summary", {}, "The code as text"), code),
      h("form", { class: "inline", onsubmit: run(async () => {
        const r = await api.post(`/v1/accounts/${enc(acct)}/pairing-code`, { phone: phone.value });
        pcode.textContent = r.code;
      }) }, h("label", { for: "pair-phone" }, "Or pair by phone number", phone), h("button", { type: "submit" }, "Get a pairing code"), pcode),
      h("button", { type: "button", class: "secondary", onclick: () => { pairingFor = ""; pairing.replaceChildren(); } }, "Close")));
    await refreshQR(acct);
  }
  async function refreshQR(acct, data) {
    if (pairingFor !== acct) return;
    const img = document.getElementById("qr-img");
    const code = document.getElementById("qr-code");
    if (!img) return;
    try {
      const q = data && data.account && data.account.qrCode ? { code: data.account.qrCode } : await api.get(`/v1/accounts/${enc(acct)}/qr`);
      const url = await api.blobURL(`/v1/accounts/${enc(acct)}/qr`, "image/png");
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = url;
      code.textContent = q.code;
      img.dataset.code = q.code;
    } catch (e) {
      if (e.status !== 404 && e.status !== 409) fail(e);
    }
  }

  async function load() {
    const r = await api.get("/v1/accounts");
    const list = r.accounts || r;
    tbody.replaceChildren(...list.map((a) => {
      const act = (label, fn, cls) => h("button", { type: "button", class: cls, onclick: run(fn), "aria-label": `${label} ${a.id}` }, label);
      return h("tr", { dataset: { id: a.id } },
        h("th", { scope: "row" }, h("a", { href: `#/accounts/${enc(a.id)}/chats` }, a.id), a.name ? h("div", { class: "muted" }, a.name) : null),
        h("td", { class: "state" }, a.state),
        h("td", {}, a.reason || a.lastError || ""),
        h("td", {}, when(a.since)),
        h("td", {}, a.jid ? a.jid.split("@")[0].split(":")[0] : ""),
        h("td", {}, h("div", { class: "actions" },
          act("Connect", async () => { await api.post(`/v1/accounts/${enc(a.id)}/connect`); say(`Connecting ${a.id}`); await load(); await showQR(a.id); }),
          a.state === "pairing" ? act("Show QR", () => showQR(a.id), "secondary") : null,
          act("Log out", async () => { await api.post(`/v1/accounts/${enc(a.id)}/logout`); await load(); }, "secondary"),
          act("Delete", async () => {
            if (!confirm(`Delete account ${a.id}?`)) return;
            await api.call("DELETE", `/v1/accounts/${enc(a.id)}`); await load();
          }, "danger"))));
    }));
  }
  await load();
  // Account events (QR rotation, connected, logged out) refresh the page.
  api.stream("kinds=account.*", (kind, data) => {
    const acct = data.accountId;
    if (kind === "account.qr") refreshQR(acct, data);
    if (kind === "account.connected" && pairingFor === acct) {
      pairing.replaceChildren(h("p", { class: "good" }, `${acct} is paired and connected.`));
      pairingFor = "";
    }
    load().catch(fail);
  }, pageAbort.signal);
}

// ---- chats and messages -------------------------------------------------------

async function chatsPage(acct) {
  const list = h("ul", { id: "chats" });
  let cursor = "";
  const more = h("button", { type: "button", id: "more-chats", class: "secondary", onclick: run(() => load()) }, "More chats");
  page(`Chats of ${acct}`, h("p", {}, h("a", { href: "#/accounts" }, "← Accounts")), list, more);
  async function load() {
    const r = await api.get(`/v1/accounts/${enc(acct)}/chats?limit=50${cursor ? "&cursor=" + enc(cursor) : ""}`);
    for (const c of r.chats) {
      list.append(h("li", {},
        h("a", { href: `#/accounts/${enc(acct)}/chats/${enc(c.id)}` }, c.name || c.id),
        " ", h("span", { class: "muted" }, `${c.messageCount ?? ""} messages, ${c.unreadCount || 0} unread · ${when(c.lastActivity)}`),
        c.lastMessage ? h("div", { class: "muted" }, cut(c.lastMessage.text, 80)) : null));
    }
    cursor = r.nextCursor || "";
    more.hidden = !cursor;
  }
  await load();
}

function messageItem(acct, m, onReply) {
  const tags = (m.tags || []).map((t) => h("span", { class: "tag" }, t));
  const preview = h("div");
  const mediaId = m.mediaId || (m.media && m.media.mediaId);
  const li = h("li", { class: m.fromMe ? "mine" : "", dataset: { id: m.messageId } },
    h("div", { class: "msg-meta" }, m.fromMe ? "You" : (m.pushName || m.from || ""), " · ", when(m.timestamp), " · ", m.type,
      m.fromMe ? [" · status: ", h("span", { class: "msg-status", dataset: { status: m.status || "" } }, m.status || "")] : null),
    m.quoted ? h("blockquote", { class: "muted" }, "↪ ", cut(m.quoted.text, 120)) : null,
    h("div", { class: "msg-text" }, m.text || (m.media && m.media.caption) || ""),
    tags.length ? h("div", {}, tags) : null,
    preview,
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => onReply(m), "aria-label": `Reply to ${cut(m.text, 40) || m.messageId}` }, "Reply"),
      mediaId ? h("button", { type: "button", class: "secondary preview-media", onclick: run(async (ev) => {
        const url = await api.blobURL(`/v1/media/${enc(mediaId)}`);
        const mt = (m.media && m.media.mimetype) || "";
        preview.replaceChildren(mt.startsWith("video") ? h("video", { src: url, controls: true, class: "preview" })
          : mt.startsWith("audio") ? h("audio", { src: url, controls: true })
          : mt.startsWith("image") ? h("img", { src: url, alt: (m.media && m.media.caption) || "image", class: "preview" })
          : h("a", { href: url, download: (m.media && m.media.filename) || "file" }, "Download"));
        ev.target.remove();
      }) }, "Preview media") : null,
      h("a", { href: `#/accounts/${enc(acct)}/messages/${enc(m.messageId)}`, class: "details" }, "Details & trace")));
  return li;
}

async function chatPage(acct, chatId) {
  const list = h("ol", { class: "messages", id: "messages", "aria-label": "Messages, newest first" });
  const q = h("input", { id: "search", name: "q", type: "search" });
  let cursor = "", query = "", replyTo = null;
  const older = h("button", { type: "button", id: "older", class: "secondary", onclick: run(() => load()) }, "Older messages");
  const count = h("p", { class: "muted", id: "count" });
  const text = h("textarea", { id: "send-text", name: "text", rows: 2 });
  const file = h("input", { id: "send-file", name: "file", type: "file" });
  const replying = h("p", { id: "replying", class: "muted" });
  const onReply = (m) => {
    replyTo = m.messageId;
    replying.replaceChildren(`Replying to: ${cut(m.text, 60) || m.messageId} `,
      h("button", { type: "button", class: "secondary", onclick: () => { replyTo = null; replying.replaceChildren(); } }, "Cancel reply"));
    text.focus();
  };
  page(`Chat ${chatId}`,
    h("p", {}, h("a", { href: `#/accounts/${enc(acct)}/chats` }, `← Chats of ${acct}`)),
    h("form", { class: "inline", id: "send", "aria-label": "Send a message", onsubmit: run(async () => {
      const body = { to: chatId };
      if (replyTo) body.replyTo = replyTo;
      if (file.files.length) {
        const f = file.files[0];
        const up = await api.call("POST", "/v1/media", f, { headers: { "Content-Type": f.type || "application/octet-stream" } });
        body.media = { mediaId: up.mediaId, filename: f.name };
        if (text.value) body.caption = text.value;
      } else {
        body.text = text.value;
      }
      const r = await api.post(`/v1/accounts/${enc(acct)}/messages`, body, { headers: { "Idempotency-Key": crypto.randomUUID() } });
      say(`Sent (${r.status})`);
      text.value = ""; file.value = ""; replyTo = null; replying.replaceChildren();
      const m = await api.get(`/v1/accounts/${enc(acct)}/messages/${enc(r.messageId)}`);
      if (!list.querySelector(`li[data-id="${CSS.escape(m.messageId)}"]`)) list.prepend(messageItem(acct, m, onReply));
      refreshStatus(m.messageId);
    }) },
      h("label", { for: "send-text" }, "Message", text),
      h("label", { for: "send-file" }, "Attachment", file),
      h("button", { type: "submit" }, "Send")),
    replying,
    h("form", { class: "inline", role: "search", onsubmit: run(async () => {
      query = q.value.trim(); cursor = ""; list.replaceChildren(); await load();
    }) }, h("label", { for: "search" }, "Search this chat", q), h("button", { type: "submit" }, "Search")),
    count, list, older);

  async function load() {
    let url = `/v1/accounts/${enc(acct)}/messages?chatId=${enc(chatId)}&limit=50`;
    if (query) url += `&q=${enc(query)}`;
    if (cursor) url += `&cursor=${enc(cursor)}`;
    const r = await api.get(url);
    for (const m of r.messages) list.append(messageItem(acct, m, onReply));
    cursor = r.nextCursor || "";
    older.hidden = !cursor;
    count.textContent = `${list.children.length} messages shown${cursor ? "; older ones page in on demand" : " (all)"}`;
  }
  await load();

  // refreshStatus reads a shown message's status again; false when the
  // message is not on the page (its status is read when it is added).
  function refreshStatus(messageId) {
    const el = list.querySelector(`li[data-id="${CSS.escape(messageId)}"] .msg-status`);
    if (!el) return false;
    api.get(`/v1/accounts/${enc(acct)}/messages/${enc(messageId)}`).then((m) => {
      el.textContent = m.status || "";
      el.dataset.status = m.status || "";
    }).catch(fail);
    return true;
  }
  // The stream filters by account; the chat is picked here (the API's
  // chat filter is a kind of chat, not one chat).
  api.stream(`accounts=${enc(acct)}&kinds=message.*`, (kind, ev) => {
    if (ev.chatId && ev.chatId !== chatId) return;
    if (kind === "message.status" && ev.status) {
      refreshStatus(ev.status.messageId);
    } else if ((kind === "message.received" || kind === "message.sent") && ev.message && !query) {
      // Shown as stored (media id, tags, status), not as the event has it.
      const id = ev.message.messageId;
      const shown = () => list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
      if (shown()) { refreshStatus(id); return; }
      api.get(`/v1/accounts/${enc(acct)}/messages/${enc(id)}`).then((m) => {
        if (!shown()) list.prepend(messageItem(acct, m, onReply));
      }).catch(fail);
    }
  }, pageAbort.signal);
}

// ---- one message: details and pipeline trace ---------------------------------

// tree renders any JSON value as nested definition lists (the trace).
function tree(v) {
  if (v === null || typeof v !== "object") return h("span", {}, String(v));
  if (Array.isArray(v)) return h("ol", {}, v.map((x) => h("li", {}, tree(x))));
  return h("dl", {}, Object.entries(v).flatMap(([k, x]) => [h("dt", {}, k), h("dd", {}, tree(x))]));
}

async function messagePage(acct, messageId) {
  const m = await api.get(`/v1/accounts/${enc(acct)}/messages/${enc(messageId)}`);
  const traceBox = h("section", { id: "trace", "aria-labelledby": "trace-h" }, h("h2", { id: "trace-h" }, "Pipeline trace"));
  const deliveries = h("section", { id: "message-deliveries" }, h("h2", {}, "Deliveries"));
  page(`Message ${messageId}`,
    h("p", {}, h("a", { href: `#/accounts/${enc(acct)}/chats/${enc(m.chatId)}` }, "← Chat")),
    h("dl", { id: "message" },
      h("dt", {}, "Chat"), h("dd", {}, m.chatId),
      h("dt", {}, "From"), h("dd", {}, m.fromMe ? "us" : `${m.pushName || ""} ${m.from}`),
      h("dt", {}, "Time"), h("dd", {}, when(m.timestamp)),
      h("dt", {}, "Text"), h("dd", {}, m.text || ""),
      m.status ? [h("dt", {}, "Status"), h("dd", {}, m.status)] : null,
      h("dt", {}, "Tags"), h("dd", { id: "tags" }, (m.tags || []).map((t) => h("span", { class: "tag" }, t))),
      h("dt", {}, "Annotations"), h("dd", { id: "annotations" }, tree(m.annotations || {})),
      h("dt", {}, "Failures"), h("dd", { id: "failures" }, (m.failures || []).length ? tree(m.failures) : "none")),
    traceBox, deliveries);
  let jobs = null;
  try {
    const t = await api.get(`/v1/accounts/${enc(acct)}/messages/${enc(messageId)}/trace`);
    traceBox.append(renderTrace(t));
    if (Array.isArray(t.deliveries)) jobs = t.deliveries;
  } catch (e) {
    if (e.status !== 404 && e.status !== 405) throw e;
    traceBox.append(h("p", { class: "muted" }, "No trace stored for this message; its tags, annotations and failures above are what the pipeline left."));
  }
  if (!jobs) jobs = (await api.get(`/v1/deliveries?accountId=${enc(acct)}&eventId=${enc(m.id)}&limit=50`)).deliveries;
  deliveries.append(jobs.length ? deliveryTable(jobs) : h("p", { class: "muted" }, "No outbox jobs for this message."));
}

// renderTrace shows GET …/trace: each stage in order with its outcome and
// time, what each rule and plugin returned, and the sinks it fed. Fields
// this page does not know are shown as they come.
function renderTrace(t) {
  const tr = t.trace;
  if (!tr || !Array.isArray(tr.stages)) return tree(t);
  const ms = (v) => (typeof v === "number" ? `${v.toFixed(2)} ms` : "");
  const known = new Set(["name", "kind", "mode", "outcome", "durationMs", "startMs", "actions", "rules", "targets", "error"]);
  const action = (a) => h("li", {}, h("strong", {}, a.type), a.origin ? ` by ${a.origin}` : "",
    a.tags ? [" ", a.tags.map((x) => h("span", { class: "tag" }, x))] : "",
    a.annotations ? ` ${Object.entries(a.annotations).map(([k, v]) => `${k}=${v}`).join(", ")}` : "",
    a.text ? `: ${cut(a.text, 120)}` : "", a.error ? h("div", { class: "bad" }, a.error) : "",
    tree(Object.fromEntries(Object.entries(a).filter(([k]) => !["type", "origin", "tags", "annotations", "text", "error"].includes(k)))));
  return h("div", {},
    h("p", {}, `Started ${when(tr.started)}, ${ms(tr.durationMs)} through ${tr.stages.length} stages.`),
    h("ol", { class: "jobs", id: "trace-stages" }, tr.stages.map((s) => h("li", { class: "card", dataset: { stage: s.name } },
      h("h3", {}, s.name, " ", h("span", { class: "muted" }, [s.kind, s.mode].filter(Boolean).join(" · "))),
      h("p", {}, "Outcome: ", h("strong", { class: s.outcome === "ok" ? "good" : "bad" }, s.outcome || ""), ` after ${ms(s.startMs)}, took ${ms(s.durationMs)}`),
      s.error ? h("p", { class: "bad" }, s.error) : null,
      (s.rules || []).length ? h("div", {}, h("h4", {}, "Rules"), h("ul", {}, s.rules.map((r) => h("li", {},
        h("strong", {}, r.rule || r.name || ""), ` (${r.file || ""}) ${ms(r.durationMs)}`,
        r.effects !== undefined ? `, ${r.effects} effects` : "", r.error ? h("div", { class: "bad" }, r.error) : null)))) : null,
      (s.actions || []).length ? h("div", {}, h("h4", {}, "Returned"), h("ul", {}, s.actions.map(action))) : null,
      (s.targets || []).length ? h("p", {}, `Fed sinks: ${s.targets.join(", ")}`) : null,
      tree(Object.fromEntries(Object.entries(s).filter(([k]) => !known.has(k))))))));
}

// deliveryTable lists outbox jobs with their attempts (a list, not a
// table: attempts with response bodies do not fit a phone's width).
function deliveryTable(jobs, replay) {
  return h("ol", { class: "jobs" }, jobs.map((j) => h("li", { class: "card job", dataset: { id: j.id, state: j.state } },
    h("div", { class: "msg-meta" }, `${j.target} · created ${when(j.createdAt)}`),
    h("div", {}, "Job ", h("code", {}, j.id)),
    h("div", { class: "job-state" }, "State: ", h("strong", {}, j.state), j.lastError ? h("div", { class: "bad" }, cut(j.lastError, 200)) : null),
    h("ol", { class: "attempts", "aria-label": `Attempts of job ${j.id}` }, (j.log || []).map((a) => h("li", {},
      `${when(a.at)}: ${a.result}`, a.status ? ` HTTP ${a.status}` : "", a.durationMs !== undefined ? ` in ${a.durationMs} ms` : "",
      a.error ? h("div", { class: "bad" }, cut(a.error, 200)) : null,
      a.response ? h("pre", {}, cut(a.response, 500)) : null))),
    replay ? h("button", { type: "button", onclick: run(() => replay(j)), "aria-label": `Replay job ${j.id}` }, "Replay") : null)));
}

// ---- pipeline ----------------------------------------------------------------

async function pipelinePage() {
  const p = await api.get("/v1/pipeline");
  const acct = h("input", { id: "trace-account", name: "account", required: true });
  const msg = h("input", { id: "trace-message", name: "message", required: true });
  const ms = (ns) => (ns ? (ns / 1e6).toFixed(2) : "0");
  page("Pipeline",
    h("p", {}, `Generation ${p.generation}; ${p.queued} events queued; ${p.activeChats} chats active.`),
    table("Stages in order", ["Stage", "Kind", "In", "Calls", "Errors", "Timeouts", "Dropped", "Enqueued", "Dead letters", "Mean latency (ms)", "Actions"],
      (p.stages || []).map((s) => h("tr", {},
        h("th", { scope: "row" }, s.name), h("td", {}, [s.kind, s.mode, s.target].filter(Boolean).join(" · ")),
        h("td", {}, s.in), h("td", {}, s.calls), h("td", {}, s.errors), h("td", {}, s.timeouts), h("td", {}, s.dropped),
        h("td", {}, s.enqueued), h("td", {}, s.deadLetters), h("td", {}, ms(s.meanLatencyNs)),
        h("td", {}, Object.entries(s.actions || {}).map(([k, v]) => `${k}: ${v}`).join(", "))))),
    h("h2", {}, "Trace a message"),
    h("form", { class: "inline", onsubmit: (ev) => {
      ev.preventDefault();
      location.hash = `#/accounts/${enc(acct.value.trim())}/messages/${enc(msg.value.trim())}`;
    } }, h("label", { for: "trace-account" }, "Account", acct), h("label", { for: "trace-message" }, "Message id", msg), h("button", { type: "submit" }, "Show trace")));
}

// ---- deliveries ----------------------------------------------------------------

async function deliveriesPage() {
  const hooks = h("div", { id: "webhooks" });
  const dead = h("section", { id: "dead-letters" });
  const id = h("input", { id: "hook-id", name: "id" });
  const url = h("input", { id: "hook-url", name: "url", type: "url", required: true });
  const events = h("input", { id: "hook-events", name: "events", value: "message.*" });
  page("Deliveries",
    h("h2", {}, "Webhook endpoints"),
    h("form", { class: "inline", "aria-label": "Register a webhook", onsubmit: run(async () => {
      const w = await api.post("/v1/webhooks", { id: id.value.trim() || undefined, url: url.value.trim(), events: events.value.split(",").map((s) => s.trim()).filter(Boolean) });
      say(`Webhook ${w.id} registered; its signing secret (shown once): ${w.secret}`);
      await load();
    }) }, h("label", { for: "hook-id" }, "Id", id), h("label", { for: "hook-url" }, "URL", url), h("label", { for: "hook-events" }, "Events", events), h("button", { type: "submit" }, "Register")),
    hooks, dead);

  async function load() {
    const r = await api.get("/v1/webhooks");
    const list = r.webhooks || r;
    const cards = await Promise.all(list.map(async (w) => {
      const jobs = (await api.get(`/v1/deliveries?sink=${enc("webhook:" + w.id)}&limit=100`)).deliveries;
      const attempts = jobs.flatMap((j) => j.log || []);
      const ok = attempts.filter((a) => a.result === "ok").length;
      const lat = attempts.filter((a) => a.durationMs !== undefined);
      const mean = lat.length ? Math.round(lat.reduce((s, a) => s + a.durationMs, 0) / lat.length) : 0;
      const out = h("output", { class: "hook-result" });
      const attemptsBox = h("div", { class: "hook-attempts" });
      const act = (label, fn, cls) => h("button", { type: "button", class: cls, onclick: run(fn), "aria-label": `${label} ${w.id}` }, label);
      return h("div", { class: "card", dataset: { id: w.id } },
        h("h3", {}, w.id, " ", h("span", { class: w.enabled ? "good" : "bad" }, w.enabled ? "enabled" : "disabled")),
        h("p", {}, w.url),
        w.disabledReason ? h("p", { class: "bad" }, w.disabledReason) : null,
        w.failingSince ? h("p", { class: "bad" }, `Failing since ${when(w.failingSince)}`) : null,
        h("p", { class: "hook-stats" }, attempts.length
          ? `Last ${jobs.length} jobs: ${Math.round((100 * ok) / attempts.length)}% of ${attempts.length} attempts succeeded, mean ${mean} ms`
          : "No attempts yet"),
        h("div", { class: "actions" },
          act(w.enabled ? "Disable" : "Enable", async () => { await api.call("PATCH", `/v1/webhooks/${enc(w.id)}`, { enabled: !w.enabled }); await load(); }, "secondary"),
          act("Rotate secret", async () => {
            const n = await api.post(`/v1/webhooks/${enc(w.id)}/rotate-secret`);
            out.textContent = `New secret (shown once): ${n.secret}`;
          }, "secondary"),
          act("Send test event", async () => {
            const a = await api.post(`/v1/webhooks/${enc(w.id)}/test`);
            out.textContent = `Test: ${a.result}${a.status ? " HTTP " + a.status : ""}${a.error ? " — " + a.error : ""}`;
          }, "secondary"),
          act("Show attempts", async () => { attemptsBox.replaceChildren(deliveryTable(jobs, replayJob)); }, "secondary")),
        out, attemptsBox);
    }));
    hooks.replaceChildren(...cards);
    const d = (await api.get("/v1/deliveries?state=deadletter&limit=50")).deliveries;
    dead.replaceChildren(h("h2", {}, "Dead letters"),
      ...(d.length ? [h("button", { type: "button", onclick: run(async () => {
        const r = await api.post("/v1/deliveries/replay", { state: "deadletter" });
        say(`Replayed ${r.replayed ?? r.count ?? ""} dead letters`); await load();
      }) }, "Replay all dead letters"), deliveryTable(d, replayJob)] : [h("p", { class: "muted" }, "None.")]));
  }
  async function replayJob(j) {
    await api.post(`/v1/deliveries/${enc(j.id)}/retry`);
    say(`Job ${j.id} queued again`);
    await load();
  }
  await load();
}

// ---- rules and plugins -----------------------------------------------------------

async function pluginsPage() {
  const [rules, plugins] = await Promise.all([api.get("/v1/rules").catch((e) => ({ error: e })), api.get("/v1/plugins").catch((e) => ({ error: e }))]);
  const rl = rules.rules || (Array.isArray(rules) ? rules : []);
  const pl = plugins.plugins || (Array.isArray(plugins) ? plugins : []);
  page("Rules & plugins",
    h("h2", {}, "Rules"),
    rules.error ? h("p", { class: "bad" }, rules.error.message) :
      table("JavaScript rules", ["Rule", "File", "Version", "Loaded", "Calls", "Errors", "Timeouts", "p99 (ms)", "Load error"], rl.map((r) => h("tr", {},
        h("th", { scope: "row" }, r.name), h("td", {}, r.file), h("td", {}, r.version), h("td", {}, when(r.loadedAt)),
        h("td", {}, r.calls), h("td", {}, r.errors), h("td", {}, r.timeouts), h("td", {}, r.p99Ns ? (r.p99Ns / 1e6).toFixed(2) : ""),
        h("td", { class: "bad" }, r.loadError || "")))),
    h("h2", {}, "Plugins"),
    plugins.error ? h("p", { class: "bad" }, plugins.error.message) :
      table("Plugins", ["Plugin", "Version", "State", "Restarts", "Calls", "Last error"], pl.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.name), h("td", {}, p.version || ""), h("td", {}, p.state), h("td", {}, p.restarts),
        h("td", {}, typeof p.calls === "object" ? JSON.stringify(p.calls) : p.calls ?? ""),
        h("td", { class: "bad" }, p.lastError ? `${p.lastError} (${when(p.lastErrorAt)})` : "")))));
}

// ---- live events ----------------------------------------------------------------

function eventsPage() {
  const kinds = h("input", { id: "f-kinds", name: "kinds", placeholder: "message.*,account.*" });
  const accounts = h("input", { id: "f-accounts", name: "accounts" });
  const chat = h("select", { id: "f-chat", name: "chat" }, ["", "user", "group", "broadcast", "status"].map((c) => h("option", { value: c }, c || "any")));
  const list = h("ol", { id: "tail", class: "tail", "aria-label": "Events, newest first" });
  const state = h("p", { class: "muted", id: "tail-state" }, "Not started");
  let ctl = null;
  const start = () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    pageAbort.signal.addEventListener("abort", () => ctl.abort());
    list.replaceChildren();
    const q = new URLSearchParams();
    if (kinds.value.trim()) q.set("kinds", kinds.value.trim());
    if (accounts.value.trim()) q.set("accounts", accounts.value.trim());
    if (chat.value.trim()) q.set("chat", chat.value.trim());
    api.stream(q.toString(), (kind, ev, id) => {
      const summary = ev.message ? `${ev.accountId} ${ev.chatId}: ${cut(ev.message.text, 80)}` : ev.status ? `${ev.status.messageId} → ${ev.status.status}` : ev.accountId || "";
      list.prepend(h("li", {}, h("strong", {}, kind), " ", summary, " ", h("span", { class: "muted" }, id)));
      while (list.children.length > 200) list.lastChild.remove();
    }, ctl.signal, (s, e) => { state.textContent = s === "open" ? "Streaming" : `Disconnected: ${e && e.message}`; });
  };
  page("Live events",
    h("form", { class: "inline", "aria-label": "Event filters", onsubmit: (ev) => { ev.preventDefault(); start(); } },
      h("label", { for: "f-kinds" }, "Kinds", kinds), h("label", { for: "f-accounts" }, "Accounts", accounts), h("label", { for: "f-chat" }, "Chat kind", chat),
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "button", class: "secondary", onclick: () => { if (ctl) ctl.abort(); state.textContent = "Stopped"; } }, "Stop")),
    state, list);
  start();
}

// ---- router -------------------------------------------------------------------

const routes = [
  [/^#\/accounts\/([^/]+)\/chats\/([^/]+)$/, chatPage],
  [/^#\/accounts\/([^/]+)\/chats$/, chatsPage],
  [/^#\/accounts\/([^/]+)\/messages\/([^/]+)$/, messagePage],
  [/^#\/accounts$/, accountsPage],
  [/^#\/pipeline$/, pipelinePage],
  [/^#\/deliveries$/, deliveriesPage],
  [/^#\/plugins$/, pluginsPage],
  [/^#\/events$/, eventsPage],
];

async function route(ev) {
  pageAbort.abort();
  pageAbort = new AbortController();
  say("");
  if (!api.key() || location.hash === "#/login") return loginPage();
  nav.hidden = false;
  const hash = location.hash || "#/accounts";
  for (const [re, fn] of routes) {
    const m = hash.match(re);
    if (m) {
      main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      try {
        await fn(...m.slice(1).map(decodeURIComponent));
      } catch (e) { fail(e); }
      main.dataset.ready = decodeURIComponent(hash);
      // A new page (not the first load): keyboard and screen-reader users
      // start at its content, not where the old page's control was.
      if (ev && !main.contains(document.activeElement)) main.focus();
      return;
    }
  }
  location.hash = "#/accounts";
}

// The skip link moves focus without touching the hash (the router's).
document.querySelector(".skip").addEventListener("click", (ev) => { ev.preventDefault(); main.focus(); });
document.getElementById("logout").addEventListener("click", () => { api.forget(); location.hash = "#/login"; });
window.addEventListener("hashchange", route);
route();
