// Keyword router: tags a message by its topic and delivers it only to the
// webhook sinks of the matching topics. A message matching no topic goes
// to every sink as usual.
//
// config:
//   30-keyword-router:
//     routes:
//       - {pattern: "invoice|billing|refund", tag: billing, sink: billing-webhook}
//       - {pattern: "order|delivery|tracking", tag: orders, sink: orders-webhook}

/// <reference path="./wildcat.d.ts" />

const DEFAULT_ROUTES = [
  { pattern: "invoice|billing|payment|refund", tag: "billing", sink: "billing-webhook" },
  { pattern: "order|delivery|shipping|tracking", tag: "orders", sink: "orders-webhook" },
  { pattern: "bug|error|broken|crash", tag: "support", sink: "support-webhook" },
];

/** @typedef {{re: RegExp, tag: string, sink: string}} Route */

// Compiled once per runtime: ctx.config is fixed for a runtime's life (a
// config change builds new runtimes).
/** @type {Route[] | undefined} */
let routes;

/** @param {Readonly<Record<string, any>>} config @returns {Route[]} */
function compile(config) {
  return (config.routes ?? DEFAULT_ROUTES).map((/** @type {any} */ r) => ({
    re: new RegExp(`\\b(${r.pattern})`, "i"),
    tag: r.tag,
    sink: r.sink,
  }));
}

on("message.received", (msg, ctx) => {
  const text = msg.message.text;
  if (!text) return;
  routes ??= compile(ctx.config);
  const hits = routes.filter((r) => r.re.test(text));
  if (hits.length === 0) return;
  ctx.tag(hits.map((r) => r.tag));
  ctx.route([...new Set(hits.map((r) => r.sink))]);
});
