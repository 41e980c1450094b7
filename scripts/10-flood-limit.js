// Flood limiter: a sender who writes more than `max` messages within
// `window` has the rest dropped (tagged "flood", stored, but no later rule,
// plugin or webhook sees them) until the window ends. Runs first (files run
// in name order) so that spam gets no auto-reply.
//
// config (config.yaml, pipeline rules stage):
//   10-flood-limit: {max: 10, window: 1m}

/// <reference path="./wildcat.d.ts" />

on("message.received", (msg, ctx) => {
  const m = msg.message;
  if (m.fromMe) return;
  const max = ctx.config.max ?? 10;
  const window = ctx.config.window ?? "1m";
  // One counter per sender and account; in groups, per member.
  const sender = m.fromPn || m.from;
  // incr's ttl starts with the first message: a fixed window.
  const n = ctx.kv.incr(`flood:${msg.accountId}:${sender}`, 1, { ttl: window });
  if (n <= max) return;
  if (n === max + 1) {
    ctx.log.warn(`flood from ${sender}: more than ${max} messages within ${window}, dropping the rest`);
  }
  ctx.tag("flood");
  ctx.drop();
});
