// Flood limiter: a sender who writes more than `max` messages within
// `window` has the rest tagged "flood" until the window ends, so later rules
// (and webhook receivers, through the tag) can tell spam from customers.
// With `drop: true` those messages are also dropped: stored, but no later
// rule, plugin or webhook sees them — opt-in, because it keeps a customer's
// messages from your sinks. Drops count in GET /v1/pipeline (the rules
// stage's "dropped") and in wildcat_pipeline_stage_dropped_total. Runs first
// (files run in name order) so that the tag is there for the other rules.
//
// config (config.yaml, pipeline rules stage):
//   10-flood-limit: {max: 10, window: 1m, drop: false}

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
    const then = ctx.config.drop ? "dropping" : "tagging";
    ctx.log.warn(`flood from ${sender}: more than ${max} messages within ${window}, ${then} the rest`);
  }
  ctx.tag("flood");
  if (ctx.config.drop) ctx.drop();
});
