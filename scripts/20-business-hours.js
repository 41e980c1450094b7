// Business hours: outside opening hours, answer a direct message with an
// away message — at most once per chat per day, remembered in kv.
//
// config:
//   20-business-hours:
//     hours: "Mon-Fri 09:00-18:00"      # ctx.time.within syntax
//     timezone: Europe/Berlin
//     message: "We're closed — we'll answer from 9:00."

/// <reference path="./wildcat.d.ts" />

on("message.received", (msg, ctx) => {
  const m = msg.message;
  if (m.fromMe || m.isGroup || m.isStatus || m.isBroadcast) return;
  const hours = ctx.config.hours ?? "Mon-Fri 09:00-18:00";
  const tz = ctx.config.timezone ?? "Europe/Berlin";
  if (ctx.time.within(hours, tz)) return;

  // The key carries the local date, so "once per day" follows the
  // business's calendar; the ttl only cleans up.
  const key = `away:${msg.accountId}:${msg.chatId}:${ctx.time.now(tz).date}`;
  if (ctx.kv.get(key)) return;
  ctx.kv.set(key, true, { ttl: "48h" });
  ctx.reply(ctx.config.message ??
    "Thanks for your message! We're closed right now and will answer during business hours (Mon–Fri 9:00–18:00).");
  ctx.tag("after-hours");
});
