// Group mention responder: when someone in a group @-mentions this account
// (or replies to one of its messages), react with 👋 and answer, quoting
// their message so the group sees what the answer is about.
//
// config:
//   40-group-mention:
//     emoji: "👋"
//     reply: "Hi {name}, thanks for the mention — we'll get back to you here."

/// <reference path="./wildcat.d.ts" />

on("message.received", (msg, ctx) => {
  const m = msg.message;
  if (!m.isGroup || m.fromMe) return;
  const me = ctx.self().jids;
  const mentioned = (m.mentions ?? []).some((jid) => me.includes(jid));
  const quotedAuthor = m.quoted?.participant;
  const repliedToMe = quotedAuthor !== undefined && me.includes(quotedAuthor);
  if (!mentioned && !repliedToMe) return;

  ctx.react(ctx.config.emoji ?? "👋");
  const template = ctx.config.reply ?? "Hi {name}, thanks for the mention — we'll get back to you here.";
  ctx.reply(template.replace("{name}", m.pushName ?? "there"), { quote: true });
  ctx.annotate("mentioned", "true");
});
