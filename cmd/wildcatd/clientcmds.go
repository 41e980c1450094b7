package main

import (
	"context"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wildcathub/wildcat/sdk/wildcat"
)

type runFunc = func(ctx context.Context, e *clientEnv, args []string) error

// clientCommands are the client commands, grouped by noun (clientGroups).
var clientCommands = []clientCommand{
	// accounts
	{group: "accounts", name: "list", maxArgs: 0, summary: "list the accounts with their state",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				list, err := e.c.Accounts(ctx)
				if err != nil {
					return err
				}
				return e.emit(nonNil(list), func(tw *tabwriter.Writer) {
					row(tw, "ID", "DRIVER", "STATE", "SINCE", "JID", "REASON")
					for _, a := range list {
						row(tw, a.ID, a.Driver, a.State, a.Since, a.JID, a.Reason)
					}
				})
			}
		}},
	{group: "accounts", name: "get", args: "ID", minArgs: 1, maxArgs: 1, summary: "show one account",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				a, err := e.c.Account(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitAccount(a)
			}
		}},
	{group: "accounts", name: "create", args: "ID", minArgs: 1, maxArgs: 1, summary: "add an account (then connect or pair it)",
		setup: func(fs *pflag.FlagSet) runFunc {
			driver := fs.String("driver", "whatsapp", "whatsapp (a real phone) or sim (the simulator)")
			name := fs.String("name", "", "a display name")
			return func(ctx context.Context, e *clientEnv, args []string) error {
				a, err := e.c.CreateAccount(ctx, wildcat.CreateAccount{ID: args[0], Driver: *driver, Name: *name})
				if err != nil {
					return err
				}
				return e.emitAccount(a)
			}
		}},
	{group: "accounts", name: "connect", args: "ID", minArgs: 1, maxArgs: 1, summary: "start connecting an account (pairing if it has no session yet)",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				a, err := e.c.ConnectAccount(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitAccount(a)
			}
		}},
	{group: "accounts", name: "pair", args: "ID", minArgs: 1, maxArgs: 1,
		summary: "pair an account with a phone: show its QR code in the terminal until connected",
		help: `Starts connecting the account if needed and prints each QR code in the
terminal as it rotates; scan it in WhatsApp under Settings › Linked devices ›
Link a device. With --phone, prints a pairing code to type on that phone
instead (Link with phone number). Exits 0 once the account is connected; 1
when it is logged out instead or --timeout passes.
`,
		setup: func(fs *pflag.FlagSet) runFunc {
			phone := fs.String("phone", "", "the account's phone number (+15551234567): pair with a code typed on the phone instead of a QR code")
			timeout := fs.Duration("timeout", 5*time.Minute, "give up when the account is not connected after this long")
			interval := fs.Duration("interval", time.Second, "how often to ask the daemon for the account's state")
			return func(ctx context.Context, e *clientEnv, args []string) error {
				p := &pairer{c: e.c, id: args[0], phone: *phone, out: e.out, interval: *interval}
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				err := p.run(ctx)
				if err != nil && ctx.Err() == context.DeadlineExceeded {
					return fmt.Errorf("account %s not connected after %s", p.id, *timeout)
				}
				return err
			}
		}},
	{group: "accounts", name: "logout", args: "ID", minArgs: 1, maxArgs: 1, summary: "unlink an account from its phone (it stays, logged out)",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				a, err := e.c.LogoutAccount(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitAccount(a)
			}
		}},
	{group: "accounts", name: "delete", args: "ID", minArgs: 1, maxArgs: 1, summary: "remove an account",
		setup: func(fs *pflag.FlagSet) runFunc {
			purge := fs.Bool("purge", false, "also delete its stored messages, chats and session")
			return func(ctx context.Context, e *clientEnv, args []string) error {
				if err := e.c.DeleteAccount(ctx, args[0], *purge); err != nil {
					return err
				}
				return e.emit(map[string]any{"id": args[0], "deleted": true, "purged": *purge}, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "Deleted account %s.\n", args[0])
				})
			}
		}},

	// send
	{group: "send", args: "ACCOUNT TO [TEXT…]", minArgs: 2, maxArgs: -1,
		summary: "send a message from ACCOUNT to TO (a phone number in international form, or a JID)",
		help: `The words after TO are the text. --media sends a file (its text becomes the
caption); --reply-to quotes a message by its WhatsApp id. Prints the
accepted message: its id, status (pending) and when pacing lets it go out.
`,
		setup: func(fs *pflag.FlagSet) runFunc {
			replyTo := fs.String("reply-to", "", "WhatsApp id of the message to quote")
			media := fs.String("media", "", "a file to send as image, video, audio or document")
			mimetype := fs.String("mimetype", "", "the file's media type; default guessed from its name")
			idem := fs.String("idempotency-key", "", "send at most once per key: a retry with the same key answers the first result")
			return func(ctx context.Context, e *clientEnv, args []string) error {
				text := strings.Join(args[2:], " ")
				req := wildcat.SendRequest{To: args[1], ReplyTo: *replyTo, IdempotencyKey: *idem}
				if *media != "" {
					b, err := os.ReadFile(*media)
					if err != nil {
						return usagef("--media: %v", err)
					}
					mt := *mimetype
					if mt == "" {
						mt = mime.TypeByExtension(filepath.Ext(*media))
					}
					if mt == "" {
						mt = "application/octet-stream"
					}
					req.Media = &wildcat.SendMedia{Data: b, Mimetype: mt, Filename: filepath.Base(*media)}
					req.Caption = text
				} else {
					if text == "" {
						return usagef("nothing to send: give the text after TO, or --media FILE")
					}
					req.Text = text
				}
				a, err := e.c.Send(ctx, args[0], req)
				if err != nil {
					return err
				}
				return e.emit(a, func(tw *tabwriter.Writer) {
					row(tw, "MESSAGE ID", "STATUS", "SCHEDULED AT")
					row(tw, a.MessageID, a.Status, a.ScheduledAt)
				})
			}
		}},

	// messages
	{group: "messages", name: "list", args: "ACCOUNT", minArgs: 1, maxArgs: 1,
		summary: "an account's messages, newest first, a page at a time; --follow tails new ones live",
		help: `Prints one page (--limit) and, when there are more, the --cursor for the next
page (on stderr in table form; as nextCursor in JSON). --all pages through
everything. --follow prints the latest page oldest first, then every new
message as it is stored (one JSON object per line with -o json) until
interrupted; a dropped connection is resumed without gaps.
`,
		setup: func(fs *pflag.FlagSet) runFunc {
			chat := fs.String("chat", "", "only this chat (a JID or phone number)")
			from := fs.String("from", "", "only from this sender")
			typ := fs.String("type", "", "only this type: text, image, video, audio, document, …")
			q := fs.String("q", "", "only messages whose text contains this (case-insensitive)")
			since := fs.String("since", "", "only messages at or after this time (RFC 3339)")
			until := fs.String("until", "", "only messages before this time (RFC 3339)")
			limit := fs.Int("limit", 20, "messages per page")
			cursor := fs.String("cursor", "", "the page after the one that printed this cursor")
			all := fs.Bool("all", false, "page through every matching message")
			follow := fs.BoolP("follow", "f", false, "then print new messages as they arrive, until interrupted")
			return func(ctx context.Context, e *clientEnv, args []string) error {
				mq := wildcat.MessageQuery{ChatID: *chat, From: *from, Type: *typ, Text: *q, Cursor: *cursor, Limit: *limit}
				var err error
				if mq.Since, err = timeFlag("since", *since); err != nil {
					return err
				}
				if mq.Until, err = timeFlag("until", *until); err != nil {
					return err
				}
				if *limit < 1 {
					return usagef("--limit must be at least 1")
				}
				if *follow {
					if *all || *cursor != "" {
						return usagef("--follow starts at the newest page: it takes no --all or --cursor")
					}
					return e.follow(ctx, args[0], mq)
				}
				page, err := e.c.MessagesPage(ctx, args[0], mq)
				if err != nil {
					return err
				}
				msgs := page.Messages
				for *all && page.NextCursor != "" {
					mq.Cursor = page.NextCursor
					if page, err = e.c.MessagesPage(ctx, args[0], mq); err != nil {
						return err
					}
					msgs = append(msgs, page.Messages...)
				}
				var next any
				if page.NextCursor != "" {
					next = page.NextCursor
				}
				err = e.emit(map[string]any{"messages": nonNil(msgs), "nextCursor": next}, func(tw *tabwriter.Writer) {
					messageHeader(tw)
					for _, m := range msgs {
						messageRow(tw, m)
					}
				})
				if err == nil && !e.json && page.NextCursor != "" {
					fmt.Fprintf(e.errOut, "more: --cursor %s\n", page.NextCursor)
				}
				return err
			}
		}},
	{group: "messages", name: "get", args: "ACCOUNT MESSAGE_ID", minArgs: 2, maxArgs: 2, summary: "show one message (by its WhatsApp id) with everything stored about it",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				m, err := e.c.Message(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return e.emit(m, func(tw *tabwriter.Writer) {
					messageHeader(tw)
					messageRow(tw, *m)
				})
			}
		}},

	{group: "messages", name: "trace", args: "ACCOUNT MESSAGE_ID", minArgs: 2, maxArgs: 2,
		summary: "what the pipeline did with a message: each stage, rule and action, and the deliveries it made",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				tr, err := e.c.Trace(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return e.emit(tr, func(tw *tabwriter.Writer) {
					row(tw, "STAGE", "KIND", "OUTCOME", "MS", "DETAIL")
					for _, s := range tr.Trace.Stages {
						var detail []string
						for _, r := range s.Rules {
							d := fmt.Sprintf("rule %s: %d action(s)", r.Rule, r.Effects)
							if r.Error != "" {
								d += fmt.Sprintf(", error at line %d: %s", r.Line, r.Error)
							}
							detail = append(detail, d)
						}
						for _, a := range s.Actions {
							detail = append(detail, strings.TrimSpace(fmt.Sprintf("%s %s %s", a.Type, strings.Join(a.Tags, ","), a.Origin)))
						}
						if len(s.Targets) > 0 {
							detail = append(detail, "to "+strings.Join(s.Targets, ","))
						}
						if s.Skipped != "" {
							detail = append(detail, "skipped: "+s.Skipped)
						}
						if s.Error != "" {
							detail = append(detail, "error: "+s.Error)
						}
						row(tw, s.Name, s.Kind, s.Outcome, fmt.Sprintf("%.2f", s.DurationMs), strings.Join(detail, "; "))
					}
					if len(tr.Deliveries) > 0 {
						fmt.Fprintln(tw)
						row(tw, "DELIVERY", "TARGET", "STATE", "ATTEMPTS", "LAST ERROR")
						for _, d := range tr.Deliveries {
							row(tw, d.ID, d.Target, d.State, d.Attempts, cut(d.LastError, 60))
						}
					}
				})
			}
		}},

	// deliveries
	{group: "deliveries", name: "list", maxArgs: 0, summary: "outbox jobs, newest first: state, attempts, last error",
		setup: func(fs *pflag.FlagSet) runFunc {
			dq := deliveryFlags(fs)
			limit := fs.Int("limit", 20, "jobs per page")
			cursor := fs.String("cursor", "", "the page after the one that printed this cursor")
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				q, err := dq.query()
				if err != nil {
					return err
				}
				q.Limit, q.Cursor = *limit, *cursor
				page, err := e.c.DeliveriesPage(ctx, q)
				if err != nil {
					return err
				}
				var next any
				if page.NextCursor != "" {
					next = page.NextCursor
				}
				err = e.emit(map[string]any{"deliveries": nonNil(page.Deliveries), "nextCursor": next}, func(tw *tabwriter.Writer) {
					row(tw, "ID", "TARGET", "STATE", "ATTEMPTS", "LAST STATUS", "UPDATED", "LAST ERROR")
					for _, d := range page.Deliveries {
						status := ""
						if n := len(d.Log); n > 0 && d.Log[n-1].Status != 0 {
							status = fmt.Sprint(d.Log[n-1].Status)
						}
						row(tw, d.ID, d.Target, d.State, d.Attempts, status, d.UpdatedAt, cut(d.LastError, 60))
					}
				})
				if err == nil && !e.json && page.NextCursor != "" {
					fmt.Fprintf(e.errOut, "more: --cursor %s\n", page.NextCursor)
				}
				return err
			}
		}},
	{group: "deliveries", name: "get", args: "ID", minArgs: 1, maxArgs: 1, summary: "show one job with its attempts",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				d, err := e.c.Delivery(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitDelivery(d)
			}
		}},
	{group: "deliveries", name: "retry", args: "ID", minArgs: 1, maxArgs: 1, summary: "queue one dead or done job again now",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				d, err := e.c.RetryDelivery(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitDelivery(d)
			}
		}},
	{group: "deliveries", name: "replay", maxArgs: 0, summary: "queue again every job matching the flags (default: every dead letter)",
		setup: func(fs *pflag.FlagSet) runFunc {
			dq := deliveryFlags(fs)
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				q, err := dq.query()
				if err != nil {
					return err
				}
				f := wildcat.ReplayFilter{State: q.State, Sink: q.Sink, EventID: q.EventID, AccountID: q.AccountID}
				if !q.Since.IsZero() {
					f.Since = &q.Since
				}
				n, err := e.c.ReplayDeliveries(ctx, f)
				if err != nil {
					return err
				}
				return e.emit(map[string]int64{"count": n}, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "Queued %d job(s) again.\n", n)
				})
			}
		}},

	// webhooks
	{group: "webhooks", name: "list", maxArgs: 0, summary: "the webhook endpoints",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				list, err := e.c.Webhooks(ctx)
				if err != nil {
					return err
				}
				return e.emit(nonNil(list), func(tw *tabwriter.Writer) {
					row(tw, "ID", "URL", "ENABLED", "EVENTS", "ACCOUNTS", "SOURCE", "FAILING SINCE")
					for _, w := range list {
						row(tw, w.ID, w.URL, w.Enabled, w.Events, orAll(w.Accounts), w.Source, w.FailingSince)
					}
				})
			}
		}},
	{group: "webhooks", name: "get", args: "ID", minArgs: 1, maxArgs: 1, summary: "show one endpoint",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				w, err := e.c.Webhook(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitWebhook(w)
			}
		}},
	{group: "webhooks", name: "create", maxArgs: 0, summary: "add an endpoint; prints its signing secret, shown this once",
		setup: func(fs *pflag.FlagSet) runFunc {
			id := fs.String("id", "", "its id; default made from the URL")
			u := fs.String("url", "", "where to POST events (required)")
			events := fs.StringSlice("event", nil, "event kinds or patterns to deliver (repeat or comma-separate); default all")
			accounts := fs.StringSlice("account", nil, "only these accounts; default all")
			desc := fs.String("description", "", "what it is for")
			headers := fs.StringArray("header", nil, "a header sent with every request, NAME=VALUE (repeatable)")
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				if *u == "" {
					return usagef("--url is required")
				}
				in := wildcat.WebhookInput{URL: u}
				if *id != "" {
					in.ID = id
				}
				if *desc != "" {
					in.Description = desc
				}
				if len(*events) > 0 {
					in.Events = events
				}
				if len(*accounts) > 0 {
					in.Accounts = accounts
				}
				if len(*headers) > 0 {
					h := map[string]string{}
					for _, kv := range *headers {
						k, v, ok := strings.Cut(kv, "=")
						if !ok || k == "" {
							return usagef("--header %q: expected NAME=VALUE", kv)
						}
						h[k] = v
					}
					in.Headers = &h
				}
				w, err := e.c.CreateWebhook(ctx, in)
				if err != nil {
					return err
				}
				return e.emitWebhook(w)
			}
		}},
	{group: "webhooks", name: "rotate", args: "ID", minArgs: 1, maxArgs: 1, summary: "make a new signing secret (the old one keeps signing for 24 hours)",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				w, err := e.c.RotateWebhookSecret(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitWebhook(w)
			}
		}},
	{group: "webhooks", name: "test", args: "ID", minArgs: 1, maxArgs: 1, summary: "send the endpoint a test event now and show the answer",
		help: "Exits 1 when the endpoint did not answer with a 2xx.\n",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				a, err := e.c.TestWebhook(ctx, args[0])
				if err != nil {
					return err
				}
				if err := e.emit(a, func(tw *tabwriter.Writer) {
					row(tw, "RESULT", "STATUS", "DURATION", "ERROR", "RESPONSE")
					row(tw, a.Result, a.Status, time.Duration(a.DurationMS)*time.Millisecond, a.Error, cut(a.Response, 60))
				}); err != nil {
					return err
				}
				if a.Result != "ok" {
					return fmt.Errorf("webhook %s: the test event was not accepted (%s)", args[0], orNone(a.Error))
				}
				return nil
			}
		}},
	{group: "webhooks", name: "delete", args: "ID", minArgs: 1, maxArgs: 1, summary: "remove an endpoint",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				if err := e.c.DeleteWebhook(ctx, args[0]); err != nil {
					return err
				}
				return e.emit(map[string]any{"id": args[0], "deleted": true}, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "Deleted webhook %s.\n", args[0])
				})
			}
		}},

	// keys
	{group: "keys", name: "list", maxArgs: 0, summary: "the API keys (never their tokens)",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				list, err := e.c.Keys(ctx)
				if err != nil {
					return err
				}
				return e.emit(nonNil(list), func(tw *tabwriter.Writer) {
					row(tw, "ID", "NAME", "SCOPES", "ACCOUNTS", "CREATED", "EXPIRES")
					for _, k := range list {
						row(tw, k.ID, k.Name, k.Scopes, orAll(k.Accounts), k.CreatedAt, k.ExpiresAt)
					}
				})
			}
		}},
	{group: "keys", name: "create", maxArgs: 0, summary: "make a key; prints its token, shown this once",
		setup: func(fs *pflag.FlagSet) runFunc {
			id := fs.String("id", "", "its id; default made from --name")
			name := fs.String("name", "", "what it is for (required)")
			scopes := fs.StringSlice("scope", nil, "scopes (repeat or comma-separate): admin, accounts:read, accounts:write, messages:read, messages:send, webhooks:manage, rules:manage, plugins:read, events:read (required)")
			accounts := fs.StringSlice("account", nil, "limit the key to these accounts; default all")
			expires := fs.String("expires", "", "when it stops working: RFC 3339 time, or a duration from now (720h)")
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				if *name == "" || len(*scopes) == 0 {
					return usagef("--name and --scope are required")
				}
				in := wildcat.KeyInput{ID: *id, Name: *name, Scopes: *scopes, Accounts: *accounts}
				if *expires != "" {
					t, err := timeFlag("expires", *expires)
					if err != nil {
						d, derr := time.ParseDuration(*expires)
						if derr != nil {
							return err
						}
						t = time.Now().Add(d)
					}
					in.ExpiresAt = &t
				}
				k, err := e.c.CreateKey(ctx, in)
				if err != nil {
					return err
				}
				return e.emitKey(k)
			}
		}},
	{group: "keys", name: "rotate", args: "ID", minArgs: 1, maxArgs: 1, summary: "replace a key's token; the old token stops working",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				k, err := e.c.RotateKey(ctx, args[0])
				if err != nil {
					return err
				}
				return e.emitKey(k)
			}
		}},
	{group: "keys", name: "revoke", args: "ID", minArgs: 1, maxArgs: 1, summary: "delete a key: requests with its token are refused from now on",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, args []string) error {
				if err := e.c.RevokeKey(ctx, args[0]); err != nil {
					return err
				}
				return e.emit(map[string]any{"id": args[0], "revoked": true}, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "Revoked key %s.\n", args[0])
				})
			}
		}},

	// rules, plugins
	{group: "rules", name: "status", maxArgs: 0, summary: "the loaded rules: version, counters, load errors with file and line",
		help: "Exits 1 when a rule failed to load.\n",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				list, err := e.c.Rules(ctx)
				if err != nil {
					return err
				}
				if err := e.emit(nonNil(list), func(tw *tabwriter.Writer) {
					row(tw, "RULE", "FILE", "VERSION", "CALLS", "ERRORS", "TIMEOUTS", "P99", "LOAD ERROR")
					for _, r := range list {
						row(tw, r.Name, r.File, r.Version, r.Calls, r.Errors, r.Timeouts, time.Duration(r.P99Ns), r.LoadError)
					}
				}); err != nil {
					return err
				}
				for _, r := range list {
					if r.LoadError != "" {
						return fmt.Errorf("rule %s did not load: %s", r.Name, r.LoadError)
					}
				}
				return nil
			}
		}},
	{group: "plugins", name: "status", maxArgs: 0, summary: "the plugin processes: state, restarts, calls, last error",
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, e *clientEnv, _ []string) error {
				list, err := e.c.Plugins(ctx)
				if err != nil {
					return err
				}
				return e.emit(nonNil(list), func(tw *tabwriter.Writer) {
					row(tw, "PLUGIN", "VERSION", "STATE", "PID", "RESTARTS", "CALLS", "ERRORS", "LAST ERROR")
					for _, p := range list {
						var calls, errs int64
						for _, k := range sortedKeys(p.Calls) {
							calls += p.Calls[k].Calls
							errs += p.Calls[k].Errors
						}
						row(tw, p.Name, p.Version, p.State, p.PID, p.Restarts, calls, errs, p.LastError)
					}
				})
			}
		}},
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func orAll(s []string) string {
	if len(s) == 0 {
		return "all"
	}
	return strings.Join(s, ",")
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

func timeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("--%s %q: expected an RFC 3339 time such as 2026-01-02T15:04:05Z", name, v)
	}
	return t, nil
}

type deliveryFlagValues struct{ state, sink, account, event, since *string }

func deliveryFlags(fs *pflag.FlagSet) *deliveryFlagValues {
	return &deliveryFlagValues{
		state:   fs.String("state", "", "pending, running, done or deadletter"),
		sink:    fs.String("sink", "", "only jobs for this sink (e.g. webhooks)"),
		account: fs.String("account", "", "only jobs of this account"),
		event:   fs.String("event", "", "only jobs of this event id"),
		since:   fs.String("since", "", "only jobs enqueued at or after this time (RFC 3339)"),
	}
}

func (f *deliveryFlagValues) query() (wildcat.DeliveryQuery, error) {
	q := wildcat.DeliveryQuery{State: *f.state, Sink: *f.sink, AccountID: *f.account, EventID: *f.event}
	var err error
	q.Since, err = timeFlag("since", *f.since)
	return q, err
}

func (e *clientEnv) emitAccount(a *wildcat.Account) error {
	return e.emit(a, func(tw *tabwriter.Writer) {
		row(tw, "ID", "DRIVER", "STATE", "SINCE", "JID", "REASON")
		row(tw, a.ID, a.Driver, a.State, a.Since, a.JID, a.Reason)
	})
}

func (e *clientEnv) emitDelivery(d *wildcat.Delivery) error {
	return e.emit(d, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "%s\t%s to %s, %d attempt(s)\n", d.ID, d.State, d.Target, d.Attempts)
		row(tw, "AT", "RESULT", "STATUS", "DURATION", "ERROR", "RESPONSE")
		for _, a := range d.Log {
			row(tw, a.At, a.Result, a.Status, time.Duration(a.DurationMS)*time.Millisecond, cut(a.Error, 60), cut(a.Response, 60))
		}
	})
}

func (e *clientEnv) emitWebhook(w *wildcat.Webhook) error {
	return e.emit(w, func(tw *tabwriter.Writer) {
		row(tw, "ID", "URL", "ENABLED", "EVENTS", "ACCOUNTS")
		row(tw, w.ID, w.URL, w.Enabled, w.Events, orAll(w.Accounts))
		if w.Secret != "" {
			fmt.Fprintf(tw, "\nSigning secret (shown this once): %s\n", w.Secret)
		}
	})
}

func (e *clientEnv) emitKey(k *wildcat.Key) error {
	return e.emit(k, func(tw *tabwriter.Writer) {
		row(tw, "ID", "NAME", "SCOPES", "ACCOUNTS")
		row(tw, k.ID, k.Name, k.Scopes, orAll(k.Accounts))
		if k.Token != "" {
			fmt.Fprintf(tw, "\nToken (shown this once): %s\n", k.Token)
		}
	})
}

func messageHeader(tw *tabwriter.Writer) {
	row(tw, "TIME", "MESSAGE ID", "CHAT", "FROM", "TYPE", "STATUS", "TEXT")
}

func messageRow(tw *tabwriter.Writer, m wildcat.Message) {
	from := m.From
	if m.FromMe {
		from = "me"
	}
	row(tw, m.Time(), m.MessageID, m.ChatID, from, m.Type, m.Status, cut(m.Text, 60))
}

// follow prints the newest page oldest first, then new messages as the
// event stream brings them, resuming after the newest message printed.
func (e *clientEnv) follow(ctx context.Context, account string, q wildcat.MessageQuery) error {
	if _, err := e.c.Account(ctx, account); err != nil {
		return err
	}
	page, err := e.c.MessagesPage(ctx, account, q)
	if err != nil {
		return err
	}
	msgs := slices.Clone(page.Messages)
	slices.Reverse(msgs)
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	if !e.json {
		messageHeader(tw)
	}
	print := func(m wildcat.Message) error {
		if e.json {
			b, err := m.MarshalJSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "%s\n", b)
			return err
		}
		messageRow(tw, m)
		return tw.Flush() // a line at a time: this is a live tail
	}
	last := ""
	for _, m := range msgs {
		if err := print(m); err != nil {
			return err
		}
		last = m.ID
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	eq := wildcat.EventQuery{Accounts: []string{account}, Kinds: []string{"message.received", "message.sent"}, LastEventID: last}
	for ev, err := range e.c.Events(ctx, eq) {
		if err != nil {
			return err
		}
		if ev.Message == nil {
			continue
		}
		// The stored message: the filters of the list apply to it, and it
		// prints like the page above.
		m, err := e.c.Message(ctx, account, ev.Message.MessageID)
		if err != nil {
			return err
		}
		if !matches(*m, q) {
			continue
		}
		if err := print(*m); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// matches applies the list filters that are easy to apply to one message.
func matches(m wildcat.Message, q wildcat.MessageQuery) bool {
	if q.Type != "" && m.Type != q.Type {
		return false
	}
	if q.Text != "" && !strings.Contains(strings.ToLower(m.Text), strings.ToLower(q.Text)) {
		return false
	}
	if q.ChatID != "" && !strings.Contains(m.ChatID, strings.TrimPrefix(q.ChatID, "+")) {
		return false
	}
	if q.From != "" && !strings.Contains(m.From, strings.TrimPrefix(q.From, "+")) {
		return false
	}
	return true
}
