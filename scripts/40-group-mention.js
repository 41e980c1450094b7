// Group mention responder: when someone in a group @-mentions this account
// (or replies to one of its messages), react with 👋 and answer, quoting
// their message so the group sees what the answer is about. A mention with
// "!help" gets the help text instead, addressed to the asker with an
// @-mention and naming the group's admins (ctx.group()). When someone adds
// the account to a group, or it joins one by link, it introduces itself
// there (a group.update event).
//
// config:
//   40-group-mention:
//     emoji: "👋"
//     reply: "Hi {name}, thanks for the mention — we'll get back to you here."
//     help: "mention me with your question and a person answers here."
//     greet: "Hello {group}! Mention me with !help to see what I can do."   # "" greets nobody

/// <reference path="./wildcat.d.ts" />

// user is the part of a JID a WhatsApp mention shows: @15551234567.
const user = (jid) => jid.split("@")[0];

on("message.received", (msg, ctx) => {
  const m = msg.message;
  if (!m.isGroup || m.fromMe) return;
  const me = ctx.self().jids;
  const mentioned = (m.mentions ?? []).some((jid) => me.includes(jid));
  const quotedAuthor = m.quoted?.participant;
  const repliedToMe = quotedAuthor !== undefined && me.includes(quotedAuthor);
  if (!mentioned && !repliedToMe) return;

  if (mentioned && /(^|\s)!help\b/.test(m.text ?? "")) {
    const help = ctx.config.help ?? "mention me with your question and a person answers here.";
    const admins = (ctx.group()?.participants ?? [])
      .filter((p) => (p.role === "admin" || p.role === "superadmin") && !me.includes(p.jid))
      .map((p) => p.jid);
    let text = `@${user(m.from)} ${help}`;
    if (admins.length > 0) text += `\nAdmins: ${admins.map((j) => "@" + user(j)).join(" ")}`;
    ctx.reply(text, { mentions: [m.from, ...admins], quote: true });
    ctx.annotate("mentioned", "help");
    return;
  }

  ctx.react(ctx.config.emoji ?? "👋");
  const template = ctx.config.reply ?? "Hi {name}, thanks for the mention — we'll get back to you here.";
  ctx.reply(template.replace("{name}", m.pushName ?? "there"), { quote: true });
  ctx.annotate("mentioned", "true");
});

on("group.update", (ev, ctx) => {
  const g = ev.group;
  if (g.self !== "added" && g.self !== "joined") return;
  // A group the account created itself needs no introduction.
  if (g.self === "added" && ctx.self().jids.includes(g.actor)) return;
  const greet = ctx.config.greet ?? "Hello {group}! Mention me with !help to see what I can do.";
  if (greet === "") return;
  ctx.reply(greet.replace("{group}", g.info?.name ?? g.name ?? "everyone"));
});
